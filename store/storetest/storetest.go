package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/broodhq/brood/store"
)

// Short TTLs, with generous margins: the machine running the suite may be
// busy, and backends count in milliseconds.
const (
	shortTTL   = 80 * time.Millisecond
	pastExpiry = 400 * time.Millisecond
	longTTL    = time.Hour
)

// Run runs the conformance suite against the stores newStore makes.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"GetSetDelete", testGetSetDelete},
		{"ValuesAreCopied", testValuesAreCopied},
		{"TTLExpires", testTTLExpires},
		{"SetReplacesTTL", testSetReplacesTTL},
		{"Incr", testIncr},
		{"IncrTTLOnlyOnCreate", testIncrTTLOnlyOnCreate},
		{"IncrBadValues", testIncrBadValues},
		{"SetIfAbsent", testSetIfAbsent},
		{"LookupAndVersions", testLookupAndVersions},
		{"CompareAndSet", testCompareAndSet},
		{"List", testList},
		{"ListSkipsExpired", testListSkipsExpired},
		{"BadInput", testBadInput},
		{"ConcurrentIncrIsExact", testConcurrentIncr},
		{"ConcurrentCompareAndSetIsExact", testConcurrentCAS},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func mustGet(t *testing.T, s store.Store, key string) ([]byte, bool) {
	t.Helper()
	v, ok, err := s.Get(ctx(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return v, ok
}

func wantValue(t *testing.T, s store.Store, key, want string) {
	t.Helper()
	v, ok := mustGet(t, s, key)
	if !ok || string(v) != want {
		t.Fatalf("Get(%q) = %q, %v; want %q, true", key, v, ok, want)
	}
}

func wantAbsent(t *testing.T, s store.Store, key string) {
	t.Helper()
	if v, ok := mustGet(t, s, key); ok {
		t.Fatalf("Get(%q) = %q, true; want absent", key, v)
	}
}

func mustSet(t *testing.T, s store.Store, key, value string, ttl time.Duration) {
	t.Helper()
	if err := s.Set(ctx(t), key, []byte(value), ttl); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func mustLookup(t *testing.T, s store.Store, key string) store.Item {
	t.Helper()
	it, ok, err := s.Lookup(ctx(t), key)
	if err != nil || !ok {
		t.Fatalf("Lookup(%q) = %v, %v; want found", key, ok, err)
	}
	return it
}

func testGetSetDelete(t *testing.T, s store.Store) {
	wantAbsent(t, s, "a")
	mustSet(t, s, "a", "one", 0)
	wantValue(t, s, "a", "one")
	mustSet(t, s, "a", "two", 0)
	wantValue(t, s, "a", "two")
	mustSet(t, s, "empty", "", 0)
	if v, ok := mustGet(t, s, "empty"); !ok || len(v) != 0 {
		t.Fatalf("Get(empty) = %q, %v; want an empty value, found", v, ok)
	}
	big := bytes.Repeat([]byte{0, 1, 0xff}, store.MaxValueLen/3)
	long := strings.Repeat("k", store.MaxKeyLen)
	if err := s.Set(ctx(t), long, big, 0); err != nil {
		t.Fatalf("Set of a key and value at the limits: %v", err)
	}
	if v, ok := mustGet(t, s, long); !ok || !bytes.Equal(v, big) {
		t.Fatalf("Get of the value at the limit: %d bytes, %v; want %d bytes back", len(v), ok, len(big))
	}
	mustSet(t, s, "é/ключ", "unicode", 0)
	wantValue(t, s, "é/ключ", "unicode")
	if err := s.Delete(ctx(t), "a"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantAbsent(t, s, "a")
	if err := s.Delete(ctx(t), "never-there"); err != nil {
		t.Fatalf("Delete of an absent key: %v; want nil", err)
	}
}

func testValuesAreCopied(t *testing.T, s store.Store) {
	in := []byte("original")
	if err := s.Set(ctx(t), "k", in, 0); err != nil {
		t.Fatal(err)
	}
	copy(in, "CHANGED!")
	v, _ := mustGet(t, s, "k")
	if string(v) != "original" {
		t.Fatalf("after changing the slice given to Set, Get = %q; want %q", v, "original")
	}
	copy(v, "CHANGED!")
	wantValue(t, s, "k", "original")
}

func testTTLExpires(t *testing.T, s store.Store) {
	before := time.Now()
	mustSet(t, s, "short", "v", shortTTL)
	mustSet(t, s, "long", "v", longTTL)
	if err := s.Set(ctx(t), "min", []byte("v"), store.MinTTL); err != nil {
		t.Fatalf("Set with store.MinTTL: %v", err)
	}
	if err := s.Set(ctx(t), "max", []byte("v"), store.MaxTTL); err != nil {
		t.Fatalf("Set with store.MaxTTL: %v", err)
	}
	it := mustLookup(t, s, "long")
	if lo, hi := before.Add(longTTL-time.Second), time.Now().Add(longTTL+time.Second); it.Expires.Before(lo) || it.Expires.After(hi) {
		t.Fatalf("Lookup(long).Expires = %v; want about %v", it.Expires, before.Add(longTTL))
	}
	time.Sleep(pastExpiry)
	wantAbsent(t, s, "short")
	wantAbsent(t, s, "min")
	if _, ok, err := s.Lookup(ctx(t), "short"); ok || err != nil {
		t.Fatalf("Lookup of an expired key = %v, %v; want absent", ok, err)
	}
	wantValue(t, s, "long", "v")
	wantValue(t, s, "max", "v")
	if n, err := s.Incr(ctx(t), "short", 1, 0); err != nil || n != 1 {
		t.Fatalf("Incr on an expired key = %d, %v; want 1 (counted from 0)", n, err)
	}
}

func testSetReplacesTTL(t *testing.T, s store.Store) {
	mustSet(t, s, "k", "v1", shortTTL)
	mustSet(t, s, "k", "v2", 0)
	if it := mustLookup(t, s, "k"); !it.Expires.IsZero() {
		t.Fatalf("after Set with ttl 0, Expires = %v; want none", it.Expires)
	}
	mustSet(t, s, "j", "v1", 0)
	mustSet(t, s, "j", "v2", shortTTL)
	time.Sleep(pastExpiry)
	wantValue(t, s, "k", "v2")
	wantAbsent(t, s, "j")
}

func incr(t *testing.T, s store.Store, key string, delta int64, ttl time.Duration) int64 {
	t.Helper()
	n, err := s.Incr(ctx(t), key, delta, ttl)
	if err != nil {
		t.Fatalf("Incr(%q, %d): %v", key, delta, err)
	}
	return n
}

func testIncr(t *testing.T, s store.Store) {
	if n := incr(t, s, "c", 5, 0); n != 5 {
		t.Fatalf("Incr on an absent key = %d; want 5", n)
	}
	if n := incr(t, s, "c", -7, 0); n != -2 {
		t.Fatalf("Incr(-7) = %d; want -2", n)
	}
	if n := incr(t, s, "c", 0, 0); n != -2 {
		t.Fatalf("Incr(0) = %d; want -2", n)
	}
	wantValue(t, s, "c", "-2")
	mustSet(t, s, "d", "40", 0)
	if n := incr(t, s, "d", 2, 0); n != 42 {
		t.Fatalf("Incr on a value Set to \"40\" = %d; want 42", n)
	}
	mustSet(t, s, "max", strconv.FormatInt(1<<63-2, 10), 0)
	if n := incr(t, s, "max", 1, 0); n != 1<<63-1 {
		t.Fatalf("Incr to the int64 maximum = %d", n)
	}
}

func testIncrTTLOnlyOnCreate(t *testing.T, s store.Store) {
	incr(t, s, "created", 1, shortTTL)
	incr(t, s, "kept", 1, 0)
	incr(t, s, "kept", 1, shortTTL) // exists: stays without expiry
	before := time.Now()
	incr(t, s, "expiring", 1, time.Minute)
	incr(t, s, "expiring", 1, longTTL) // exists: keeps its minute
	if exp := mustLookup(t, s, "expiring").Expires; exp.Before(before.Add(time.Minute-time.Second)) || exp.After(time.Now().Add(time.Minute+time.Second)) {
		t.Fatalf("after Incr with a TTL on a key that has one, Expires = %v; want the first, about %v", exp, before.Add(time.Minute))
	}
	time.Sleep(pastExpiry)
	wantAbsent(t, s, "created")
	wantValue(t, s, "kept", "2")
	if it := mustLookup(t, s, "kept"); !it.Expires.IsZero() {
		t.Fatalf("after Incr with a TTL on a key without one, Expires = %v; want none", it.Expires)
	}
}

func testIncrBadValues(t *testing.T, s store.Store) {
	for _, v := range []string{"abc", "1.5", "", " 1", "12x", "+1", "007", "-0", "-", "99999999999999999999"} {
		key := "bad:" + v
		mustSet(t, s, key, v, 0)
		if _, err := s.Incr(ctx(t), key, 1, 0); !errors.Is(err, store.ErrNotInteger) {
			t.Errorf("Incr on %q: err = %v; want store.ErrNotInteger", v, err)
		}
		wantValue(t, s, key, v)
	}
	mustSet(t, s, "top", strconv.FormatInt(1<<63-1, 10), 0)
	if _, err := s.Incr(ctx(t), "top", 1, 0); !errors.Is(err, store.ErrOverflow) {
		t.Errorf("Incr past the int64 maximum: err = %v; want store.ErrOverflow", err)
	}
	wantValue(t, s, "top", strconv.FormatInt(1<<63-1, 10))
	mustSet(t, s, "bottom", strconv.FormatInt(-1<<63, 10), 0)
	if _, err := s.Incr(ctx(t), "bottom", -1, 0); !errors.Is(err, store.ErrOverflow) {
		t.Errorf("Incr past the int64 minimum: err = %v; want store.ErrOverflow", err)
	}
}

func testSetIfAbsent(t *testing.T, s store.Store) {
	ok, err := s.SetIfAbsent(ctx(t), "k", []byte("first"), 0)
	if err != nil || !ok {
		t.Fatalf("SetIfAbsent on an absent key = %v, %v; want true", ok, err)
	}
	ok, err = s.SetIfAbsent(ctx(t), "k", []byte("second"), 0)
	if err != nil || ok {
		t.Fatalf("SetIfAbsent on a present key = %v, %v; want false", ok, err)
	}
	wantValue(t, s, "k", "first")
	if ok, err := s.SetIfAbsent(ctx(t), "t", []byte("v"), shortTTL); err != nil || !ok {
		t.Fatalf("SetIfAbsent with a TTL = %v, %v", ok, err)
	}
	time.Sleep(pastExpiry)
	if ok, err := s.SetIfAbsent(ctx(t), "t", []byte("again"), 0); err != nil || !ok {
		t.Fatalf("SetIfAbsent on an expired key = %v, %v; want true", ok, err)
	}
	wantValue(t, s, "t", "again")
}

func testLookupAndVersions(t *testing.T, s store.Store) {
	if _, ok, err := s.Lookup(ctx(t), "k"); ok || err != nil {
		t.Fatalf("Lookup of an absent key = %v, %v; want false, nil", ok, err)
	}
	mustSet(t, s, "k", "v", 0)
	a := mustLookup(t, s, "k")
	if a.Key != "k" || string(a.Value) != "v" || a.Version == 0 || !a.Expires.IsZero() {
		t.Fatalf("Lookup = %+v; want key k, value v, a version, no expiry", a)
	}
	seen := map[uint64]string{a.Version: "Set"}
	step := func(what string, fn func()) {
		t.Helper()
		fn()
		v := mustLookup(t, s, "k").Version
		if prev, dup := seen[v]; dup {
			t.Fatalf("version %d after %s was already given after %s; want a new one per write", v, what, prev)
		}
		seen[v] = what
	}
	step("Set again", func() { mustSet(t, s, "k", "v", 0) })
	step("Set to a number", func() { mustSet(t, s, "k", "1", 0) })
	step("Incr", func() { incr(t, s, "k", 1, 0) })
	step("Delete and Set", func() {
		if err := s.Delete(ctx(t), "k"); err != nil {
			t.Fatal(err)
		}
		mustSet(t, s, "k", "v", 0)
	})
	step("Delete and Incr", func() {
		if err := s.Delete(ctx(t), "k"); err != nil {
			t.Fatal(err)
		}
		incr(t, s, "k", 1, 0)
	})
}

func cas(t *testing.T, s store.Store, key, value string, version uint64, ttl time.Duration) bool {
	t.Helper()
	ok, err := s.CompareAndSet(ctx(t), key, []byte(value), version, ttl)
	if err != nil {
		t.Fatalf("CompareAndSet(%q, version %d): %v", key, version, err)
	}
	return ok
}

func testCompareAndSet(t *testing.T, s store.Store) {
	if !cas(t, s, "k", "created", 0, 0) {
		t.Fatal("CompareAndSet with version 0 on an absent key = false; want true")
	}
	if cas(t, s, "k", "again", 0, 0) {
		t.Fatal("CompareAndSet with version 0 on a present key = true; want false")
	}
	it := mustLookup(t, s, "k")
	before := time.Now()
	if !cas(t, s, "k", "updated", it.Version, time.Minute) {
		t.Fatal("CompareAndSet with the current version = false; want true")
	}
	wantValue(t, s, "k", "updated")
	if cas(t, s, "k", "stale", it.Version, 0) {
		t.Fatal("CompareAndSet with a stale version = true; want false")
	}
	wantValue(t, s, "k", "updated")
	if exp := mustLookup(t, s, "k").Expires; exp.Before(before.Add(time.Minute-time.Second)) || exp.After(time.Now().Add(time.Minute+time.Second)) {
		t.Fatalf("after CompareAndSet with a TTL, Expires = %v; want about %v", exp, before.Add(time.Minute))
	}
	if cas(t, s, "absent", "v", 12345, 0) {
		t.Fatal("CompareAndSet with a version on an absent key = true; want false")
	}
	if !cas(t, s, "short", "v", 0, shortTTL) {
		t.Fatal("CompareAndSet creating a key with a TTL = false")
	}
	time.Sleep(pastExpiry) // the ttl CompareAndSet gave applies
	wantAbsent(t, s, "short")

	// A key deleted and created again does not match a version from before.
	mustSet(t, s, "r", "v", 0)
	old := mustLookup(t, s, "r").Version
	if err := s.Delete(ctx(t), "r"); err != nil {
		t.Fatal(err)
	}
	mustSet(t, s, "r", "v", 0)
	if cas(t, s, "r", "x", old, 0) {
		t.Fatal("CompareAndSet with the version of a deleted key = true; want false")
	}
}

func keys(items []store.Item) []string {
	var ks []string
	for _, it := range items {
		ks = append(ks, it.Key)
	}
	return ks
}

func list(t *testing.T, s store.Store, prefix, after string, limit int) []store.Item {
	t.Helper()
	items, err := s.List(ctx(t), prefix, after, limit)
	if err != nil {
		t.Fatalf("List(%q, %q, %d): %v", prefix, after, limit, err)
	}
	return items
}

func testList(t *testing.T, s store.Store) {
	for _, k := range []string{"user:3", "user:1", "user:2", "user:10", "users", "use", "other:1", "v"} {
		mustSet(t, s, k, "val-"+k, 0)
	}
	items := list(t, s, "user:", "", 100)
	if got, want := fmt.Sprint(keys(items)), "[user:1 user:10 user:2 user:3]"; got != want {
		t.Fatalf("List(user:) keys = %s; want %s", got, want)
	}
	for _, it := range items {
		if string(it.Value) != "val-"+it.Key || it.Version == 0 {
			t.Fatalf("List item %+v; want its value and version", it)
		}
	}
	if got, want := fmt.Sprint(keys(list(t, s, "user:", "", 2))), "[user:1 user:10]"; got != want {
		t.Fatalf("List(user:, limit 2) = %s; want %s", got, want)
	}
	if got, want := fmt.Sprint(keys(list(t, s, "user:", "user:10", 2))), "[user:2 user:3]"; got != want {
		t.Fatalf("List(user:, after user:10) = %s; want %s", got, want)
	}
	if got := list(t, s, "user:", "user:3", 2); len(got) != 0 {
		t.Fatalf("List after the last key = %v; want none", keys(got))
	}
	if got := list(t, s, "nothing", "", 10); len(got) != 0 {
		t.Fatalf("List of an unused prefix = %v; want none", keys(got))
	}
	if got := len(list(t, s, "", "", 100)); got != 8 {
		t.Fatalf("List of every key: %d keys; want 8", got)
	}

	// Paging through more keys than one page.
	for i := range 250 {
		mustSet(t, s, fmt.Sprintf("page:%04d", i), "v", 0)
	}
	var all []string
	for after := ""; ; {
		page := list(t, s, "page:", after, 100)
		if len(page) == 0 {
			break
		}
		all = append(all, keys(page)...)
		after = page[len(page)-1].Key
	}
	if len(all) != 250 || all[0] != "page:0000" || all[249] != "page:0249" {
		t.Fatalf("paging: %d keys, from %v; want page:0000 to page:0249", len(all), all[:min(3, len(all))])
	}
}

func testListSkipsExpired(t *testing.T, s store.Store) {
	mustSet(t, s, "p:live", "v", 0)
	mustSet(t, s, "p:dying", "v", shortTTL)
	mustSet(t, s, "p:later", "v", longTTL)
	time.Sleep(pastExpiry)
	items := list(t, s, "p:", "", 10)
	if got, want := fmt.Sprint(keys(items)), "[p:later p:live]"; got != want {
		t.Fatalf("List = %s; want %s (no expired keys)", got, want)
	}
	if items[0].Expires.IsZero() || !items[1].Expires.IsZero() {
		t.Fatalf("List expiries = %v, %v; want p:later's, none", items[0].Expires, items[1].Expires)
	}
}

func testBadInput(t *testing.T, s store.Store) {
	long := strings.Repeat("k", store.MaxKeyLen+1)
	big := make([]byte, store.MaxValueLen+1)
	badKeys := []struct {
		key  string
		want error
	}{
		{"", store.ErrBadKey},
		{"\xff\xfe", store.ErrBadKey},
		{long, store.ErrKeyTooLong},
	}
	badTTLs := []time.Duration{-time.Second, -1, time.Microsecond, store.MaxTTL + time.Hour, 1<<63 - 1}
	c := ctx(t)
	check := func(what string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: err = %v; want %v", what, err, want)
		}
	}
	for _, bk := range badKeys {
		k := bk.key
		if len(k) > 20 {
			k = k[:20] + "..."
		}
		_, _, err := s.Get(c, bk.key)
		check(fmt.Sprintf("Get(%q)", k), err, bk.want)
		check(fmt.Sprintf("Set(%q)", k), s.Set(c, bk.key, nil, 0), bk.want)
		check(fmt.Sprintf("Delete(%q)", k), s.Delete(c, bk.key), bk.want)
		_, err = s.Incr(c, bk.key, 1, 0)
		check(fmt.Sprintf("Incr(%q)", k), err, bk.want)
		_, err = s.SetIfAbsent(c, bk.key, nil, 0)
		check(fmt.Sprintf("SetIfAbsent(%q)", k), err, bk.want)
		_, _, err = s.Lookup(c, bk.key)
		check(fmt.Sprintf("Lookup(%q)", k), err, bk.want)
		_, err = s.CompareAndSet(c, bk.key, nil, 0, 0)
		check(fmt.Sprintf("CompareAndSet(%q)", k), err, bk.want)
	}
	check("Set of a value over the limit", s.Set(c, "k", big, 0), store.ErrValueTooLarge)
	_, err := s.SetIfAbsent(c, "k", big, 0)
	check("SetIfAbsent of a value over the limit", err, store.ErrValueTooLarge)
	_, err = s.CompareAndSet(c, "k", big, 0, 0)
	check("CompareAndSet of a value over the limit", err, store.ErrValueTooLarge)
	for _, ttl := range badTTLs {
		check(fmt.Sprintf("Set with ttl %s", ttl), s.Set(c, "k", nil, ttl), store.ErrBadTTL)
		_, err := s.Incr(c, "k", 1, ttl)
		check(fmt.Sprintf("Incr with ttl %s", ttl), err, store.ErrBadTTL)
		_, err = s.SetIfAbsent(c, "k", nil, ttl)
		check(fmt.Sprintf("SetIfAbsent with ttl %s", ttl), err, store.ErrBadTTL)
		_, err = s.CompareAndSet(c, "k", nil, 0, ttl)
		check(fmt.Sprintf("CompareAndSet with ttl %s", ttl), err, store.ErrBadTTL)
	}
	for _, limit := range []int{0, -1, store.MaxListLimit + 1} {
		_, err := s.List(c, "", "", limit)
		check(fmt.Sprintf("List with limit %d", limit), err, store.ErrBadLimit)
	}
	_, err = s.List(c, "\xff", "", 10)
	check("List with a prefix that is not UTF-8", err, store.ErrBadKey)
	_, err = s.List(c, long, "", 10)
	check("List with a prefix over the key limit", err, store.ErrKeyTooLong)
	wantAbsent(t, s, "k") // nothing refused was written
}

func testConcurrentIncr(t *testing.T, s store.Store) {
	const workers, each = 8, 250
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range each {
				if _, err := s.Incr(ctx(t), "n", 1, 0); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Incr: %v", err)
	}
	wantValue(t, s, "n", strconv.Itoa(workers*each))
}

// testConcurrentCAS counts with Lookup and CompareAndSet from several
// goroutines: a lost update would leave the count short.
func testConcurrentCAS(t *testing.T, s store.Store) {
	const workers, each = 4, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range each {
				if err := casIncrement(ctx(t), s, "n"); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent CompareAndSet: %v", err)
	}
	wantValue(t, s, "n", strconv.Itoa(workers*each))
}

func casIncrement(c context.Context, s store.Store, key string) error {
	for {
		it, found, err := s.Lookup(c, key)
		if err != nil {
			return err
		}
		n := 0
		if found {
			if n, err = strconv.Atoi(string(it.Value)); err != nil {
				return err
			}
		}
		ok, err := s.CompareAndSet(c, key, []byte(strconv.Itoa(n+1)), it.Version, 0)
		if err != nil || ok {
			return err
		}
	}
}

func testClosed(t *testing.T, s store.Store) {
	mustSet(t, s, "k", "v", 0)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v; want nil", err)
	}
	c := ctx(t)
	_, _, err := s.Get(c, "k")
	if !errors.Is(err, store.ErrClosed) {
		t.Errorf("Get after Close: err = %v; want store.ErrClosed", err)
	}
	if err := s.Set(c, "k", nil, 0); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Set after Close: err = %v; want store.ErrClosed", err)
	}
	if _, err := s.Incr(c, "k", 1, 0); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Incr after Close: err = %v; want store.ErrClosed", err)
	}
	if _, err := s.List(c, "", "", 1); !errors.Is(err, store.ErrClosed) {
		t.Errorf("List after Close: err = %v; want store.ErrClosed", err)
	}
}
