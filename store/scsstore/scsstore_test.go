package scsstore_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/broodhq/brood/store/memstore"
	"github.com/broodhq/brood/store/scsstore"
)

func TestFindCommitDeleteAll(t *testing.T) {
	ms := memstore.New()
	defer ms.Close()
	st := scsstore.New(ms)
	if err := st.Commit("tok1", []byte("data1"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	st.Commit("tok2", []byte("data2"), time.Now().Add(time.Hour))
	st.Commit("short", []byte("x"), time.Now().Add(80*time.Millisecond))
	if err := st.Commit("past", []byte("x"), time.Now().Add(-time.Second)); err != nil {
		t.Fatalf("Commit of an expired session: %v; want nil (it is deleted)", err)
	}
	if b, ok, err := st.Find("tok1"); err != nil || !ok || string(b) != "data1" {
		t.Fatalf("Find(tok1) = %q, %v, %v", b, ok, err)
	}
	if _, ok, _ := st.Find("past"); ok {
		t.Fatal("Find of a session committed already expired: found")
	}
	time.Sleep(400 * time.Millisecond)
	if _, ok, _ := st.Find("short"); ok {
		t.Fatal("Find of an expired session: found")
	}
	ms.Set(context.Background(), "not-a-session", []byte("x"), 0)
	all, err := st.All()
	if err != nil || len(all) != 2 || string(all["tok1"]) != "data1" || string(all["tok2"]) != "data2" {
		t.Fatalf("All = %v, %v; want tok1 and tok2 only", all, err)
	}
	if err := st.Delete("tok1"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := st.Find("tok1"); ok {
		t.Fatal("Find after Delete: found")
	}
	if err := st.Delete("never"); err != nil {
		t.Fatalf("Delete of an absent token: %v; want nil", err)
	}
}

// TestTwoManagersShareSessions: two scs managers (two workers) over one
// store see each other's sessions.
func TestTwoManagersShareSessions(t *testing.T) {
	ms := memstore.New()
	defer ms.Close()
	a, b := scs.New(), scs.New()
	a.Store, b.Store = scsstore.New(ms), scsstore.New(ms)
	put := a.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.Put(r.Context(), "user", "alice")
	}))
	get := b.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(b.GetString(r.Context(), "user")))
	}))
	rec := httptest.NewRecorder()
	put.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	cookie := rec.Result().Cookies()
	if len(cookie) != 1 {
		t.Fatalf("no session cookie: %v", rec.Result().Header)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.AddCookie(cookie[0])
	rec = httptest.NewRecorder()
	get.ServeHTTP(rec, req)
	if got := rec.Body.String(); got != "alice" {
		t.Fatalf("the other manager read %q; want alice", got)
	}
}
