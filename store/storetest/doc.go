// Package storetest is the conformance suite of store.Store: every backend
// (the agent's database, its memory fallback, Redis, the client workers use
// across the messenger) runs it, so that they behave alike.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s := open(t)
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// newStore is called once per subtest and must return an empty store. The
// suite uses TTLs of tens of milliseconds and waits generously past them, so
// it tolerates a loaded machine; it takes a few seconds.
package storetest
