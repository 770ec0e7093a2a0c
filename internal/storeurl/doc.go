// Package storeurl maps the URL schemes of $BROOD_STORE and
// framework.WithStore to the store backends that registered them, so that
// an application links a backend (and its client library) only when it
// imports the backend's package.
package storeurl
