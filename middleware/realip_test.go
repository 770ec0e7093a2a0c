package middleware

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func TestRealIP(t *testing.T) {
	mustPrefixes := func(s ...string) []netip.Prefix {
		p, err := ParsePrefixes(s...)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	loopbackAndLB := mustPrefixes("127.0.0.0/8", "10.0.0.0/8")
	elsewhere := mustPrefixes("10.0.0.0/8") // the test client (127.0.0.1) is not a proxy

	const peer = "" // want r.RemoteAddr left as the direct peer's host:port
	tests := []struct {
		name    string
		trusted []netip.Prefix
		xff     []string
		realIP  string
		want    string
	}{
		{"forged xff from untrusted peer", elsewhere, []string{"1.2.3.4"}, "", peer},
		{"forged x-real-ip from untrusted peer", elsewhere, nil, "1.2.3.4", peer},
		{"forged xff, no trusted list", nil, []string{"1.2.3.4"}, "", peer},
		{"one proxy", loopbackAndLB, []string{"203.0.113.7"}, "", "203.0.113.7"},
		{"trusted hops skipped", loopbackAndLB, []string{"203.0.113.7, 10.1.2.3"}, "", "203.0.113.7"},
		{"client-forged left entry ignored", loopbackAndLB, []string{"6.6.6.6, 203.0.113.7, 10.1.2.3"}, "", "203.0.113.7"},
		{"repeated headers are one list", loopbackAndLB, []string{"6.6.6.6", "203.0.113.7"}, "", "203.0.113.7"},
		{"all hops trusted", loopbackAndLB, []string{"10.0.0.9, 10.1.2.3"}, "", "10.0.0.9"},
		{"v4-mapped trusted hop skipped", loopbackAndLB, []string{"203.0.113.7, ::ffff:10.1.2.3"}, "", "203.0.113.7"},
		{"zoned trusted hop skipped", mustPrefixes("127.0.0.0/8", "fe80::/10"), []string{"203.0.113.7, fe80::1%eth0"}, "", "203.0.113.7"},
		{"ipv6 client", loopbackAndLB, []string{"2001:db8::1"}, "", "2001:db8::1"},
		{"empty entries skipped", loopbackAndLB, []string{" , 203.0.113.7 ,, "}, "", "203.0.113.7"},
		{"garbage entry fails closed", loopbackAndLB, []string{"203.0.113.7, not-an-ip, 10.1.2.3"}, "", peer},
		{"garbage only", loopbackAndLB, []string{"unknown"}, "", peer},
		{"xff preferred over x-real-ip", loopbackAndLB, []string{"203.0.113.7"}, "198.51.100.1", "203.0.113.7"},
		{"x-real-ip from trusted peer", loopbackAndLB, nil, "198.51.100.1", "198.51.100.1"},
		{"garbage x-real-ip", loopbackAndLB, nil, "<script>", peer},
		{"no headers", loopbackAndLB, nil, "", peer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan string, 1)
			srv := newServer(t, RealIP(tt.trusted...)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got <- r.RemoteAddr
			})))
			req := mustRequest(t, "GET", srv.URL, nil)
			for _, v := range tt.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			if tt.realIP != "" {
				req.Header.Set("X-Real-IP", tt.realIP)
			}
			if _, _, err := do(t, req); err != nil {
				t.Fatal(err)
			}
			remote := <-got
			if tt.want == peer {
				if !strings.HasPrefix(remote, "127.0.0.1:") {
					t.Fatalf("got RemoteAddr %q, want the direct peer 127.0.0.1:port", remote)
				}
				return
			}
			if remote != tt.want {
				t.Fatalf("got RemoteAddr %q, want %q", remote, tt.want)
			}
		})
	}
}

// Peers a loopback test cannot produce: a dual-stack listener's v4-mapped
// form, an IPv6 proxy, and a RemoteAddr without a port.
func TestRealIPPeerForms(t *testing.T) {
	trusted, err := ParsePrefixes("10.0.0.0/8", "2001:db8:1::/48")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		remote string
		want   string // "" for unchanged
	}{
		{"[::ffff:10.0.0.1]:5555", "203.0.113.7"},
		{"[2001:db8:1::5]:5555", "203.0.113.7"},
		{"10.0.0.1", "203.0.113.7"},
		{"[2001:db8:2::5]:5555", ""},
		{"garbage", ""},
	}
	for _, tt := range tests {
		t.Run(tt.remote, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tt.remote, Header: http.Header{"X-Forwarded-For": {"203.0.113.7"}}}
			ip, ok := clientIP(r, trusted)
			if tt.want == "" {
				if ok {
					t.Fatalf("got %v, want RemoteAddr unchanged", ip)
				}
				return
			}
			if !ok || ip.String() != tt.want {
				t.Fatalf("got %v, %v; want %s", ip, ok, tt.want)
			}
		})
	}
}

// RealIP must hand the next handler a copy: the request it was given belongs
// to the middleware above it, which may log its RemoteAddr.
func TestRealIPDoesNotChangeCallersRequest(t *testing.T) {
	trusted, _ := ParsePrefixes("10.0.0.0/8")
	r := &http.Request{RemoteAddr: "10.0.0.1:5555", Header: http.Header{"X-Forwarded-For": {"203.0.113.7"}}}
	var inner string
	RealIP(trusted...)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner = r.RemoteAddr
	})).ServeHTTP(nil, r)
	if inner != "203.0.113.7" || r.RemoteAddr != "10.0.0.1:5555" {
		t.Fatalf("inner %q, caller's %q; want 203.0.113.7 and 10.0.0.1:5555", inner, r.RemoteAddr)
	}
}

func TestParsePrefixes(t *testing.T) {
	tests := []struct {
		in      []string
		want    string // prefixes joined by space
		wantErr string // must appear in the error
	}{
		{in: []string{"10.0.0.0/8", "127.0.0.1", "::1", "fd00::/8"}, want: "10.0.0.0/8 127.0.0.1/32 ::1/128 fd00::/8"},
		{in: []string{" 10.0.0.0/8 "}, want: "10.0.0.0/8"},
		{in: []string{"10.1.2.3/8"}, want: "10.0.0.0/8"},
		{in: []string{"::ffff:127.0.0.1"}, want: "127.0.0.1/32"},
		{in: nil, want: ""},
		{in: []string{"10.0.0.0/8", "10.0.0.300"}, wantErr: `"10.0.0.300"`},
		{in: []string{"10.0.0.0/33"}, wantErr: `"10.0.0.0/33"`},
		{in: []string{"localhost"}, wantErr: `"localhost"`},
		{in: []string{""}, wantErr: `""`},
		{in: []string{"fe80::1%eth0"}, wantErr: `"fe80::1%eth0"`},
		{in: []string{"bad-one", "bad-two"}, wantErr: `"bad-one"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.in, ","), func(t *testing.T) {
			got, err := ParsePrefixes(tt.in...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, p := range got {
				s = append(s, p.String())
			}
			if strings.Join(s, " ") != tt.want {
				t.Fatalf("got %v, want %s", s, tt.want)
			}
		})
	}
}
