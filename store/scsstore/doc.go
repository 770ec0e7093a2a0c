// Package scsstore keeps alexedwards/scs sessions in the cluster's store,
// so that a session created on one worker is there on every other (scs's
// memstore, its default, keeps it in the worker that created it):
//
//	sessions := scs.New()
//	framework.Run(sessions.LoadAndSave(r),
//		framework.WithApp(func(a *app.App) error {
//			sessions.Store = scsstore.New(a.Store())
//			return nil
//		}))
//
// The value New returns implements scs.Store, scs.CtxStore,
// scs.IterableStore and scs.IterableCtxStore. Each session is one key,
// Prefix + token, whose TTL is the session's expiry, so the store removes
// expired sessions itself. Methods without a context bound their call with
// Timeout.
package scsstore
