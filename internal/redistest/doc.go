// Package redistest starts a private redis-server on a free loopback port
// for a test, and stops it at the test's end.
//
// When redis-server is not installed the test is skipped, naming the
// Debian package, unless $BROOD_CI_REQUIRE_TOOLS=1, in which case it fails:
// CI must not pass by skipping.
package redistest
