package middleware

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// RealIP sets r.RemoteAddr to the client's address as reported by the
// proxies in front of the worker, so AccessLog, rate limiters and handlers
// see the client and not the load balancer.
//
// The headers are believed only when the direct peer (r.RemoteAddr) is in
// trusted; from anyone else X-Forwarded-For and X-Real-IP are ignored, so a
// client reaching the worker directly cannot choose the address it is logged
// under. X-Forwarded-For is walked from the right (the end the nearest proxy
// appended), skipping trusted hops; the first untrusted address is the client.
// If every hop is trusted the leftmost one is the client (internal traffic).
// Without X-Forwarded-For a trusted peer's X-Real-IP is used. An entry that
// does not parse stops the walk and leaves r.RemoteAddr as it was: nothing
// left of garbage can be vouched for.
//
// The new r.RemoteAddr is a bare IP without a port (proxies do not forward
// the client's port), as chi's RealIP sets it. The headers themselves are
// left in place.
//
// chi's RealIP trusts the headers from any peer; chi's ClientIPFromXFF
// validates like this but panics on a bad prefix and stores the address in
// the context rather than in r.RemoteAddr, where the access log and most
// libraries look for it.
//
// With no trusted prefixes RealIP changes nothing. Build the list from
// configuration with ParsePrefixes.
func RealIP(trusted ...netip.Prefix) func(http.Handler) http.Handler {
	trusted = append([]netip.Prefix(nil), trusted...) // the caller may reuse its slice
	return func(next http.Handler) http.Handler {
		if len(trusted) == 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if ip, ok := clientIP(r, trusted); ok {
				r2 := *r // like r.WithContext: never change the caller's request
				r2.RemoteAddr = ip.String()
				r = &r2
			}
			next.ServeHTTP(w, r)
		})
	}
}

// clientIP reports the client address the trusted proxies vouch for, and
// false when r.RemoteAddr should stay as it is.
func clientIP(r *http.Request, trusted []netip.Prefix) (netip.Addr, bool) {
	peer, ok := parsePeer(r.RemoteAddr)
	if !ok || !isTrusted(peer, trusted) {
		return netip.Addr{}, false
	}
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		return walkForwardedFor(xff, trusted)
	}
	if xri := r.Header.Values("X-Real-IP"); len(xri) > 0 {
		// The last value is the one the nearest proxy set.
		return parseHeaderIP(xri[len(xri)-1])
	}
	return netip.Addr{}, false
}

// walkForwardedFor treats repeated X-Forwarded-For headers as one
// comma-separated list, as RFC 9110 says they are, so a client cannot pick
// which one we read by sending two.
func walkForwardedFor(values []string, trusted []netip.Prefix) (netip.Addr, bool) {
	var last netip.Addr
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		for v != "" {
			var entry string
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				entry, v = v[j+1:], v[:j]
			} else {
				entry, v = v, ""
			}
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			ip, ok := parseHeaderIP(entry)
			if !ok {
				return netip.Addr{}, false
			}
			if !isTrusted(ip, trusted) {
				return ip, true
			}
			last = ip
		}
	}
	return last, last.IsValid()
}

func isTrusted(ip netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// parsePeer reads r.RemoteAddr, which is host:port from net/http, or a bare
// IP after another RealIP-like middleware.
func parsePeer(addr string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	// A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d, which
	// IPv4 prefixes do not contain.
	return parseHeaderIP(host)
}

// parseHeaderIP unmaps and drops the zone: netip.Prefix.Contains is false
// for both forms, so a client could otherwise spell a trusted address in a
// way that slips past isTrusted and is then taken for the client.
func parseHeaderIP(s string) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Addr{}, false
	}
	return ip.Unmap().WithZone(""), true
}

// ParsePrefixes parses trusted proxy addresses for RealIP from
// configuration: CIDR prefixes ("10.0.0.0/8", "fd00::/8") or single
// addresses ("127.0.0.1", "::1"). Surrounding spaces are ignored. The error
// names the first entry that is neither.
func ParsePrefixes(entries ...string) ([]netip.Prefix, error) {
	prefixes := make([]netip.Prefix, 0, len(entries))
	for _, e := range entries {
		s := strings.TrimSpace(e)
		var p netip.Prefix
		var err error
		if strings.Contains(s, "/") {
			p, err = netip.ParsePrefix(s)
		} else {
			var ip netip.Addr
			ip, err = netip.ParseAddr(s)
			if err == nil && ip.Zone() != "" {
				err = errors.New("zones are not allowed")
			}
			ip = ip.Unmap() // peers are compared unmapped
			p = netip.PrefixFrom(ip, ip.BitLen())
		}
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q is not an IP address or CIDR prefix: %w", e, err)
		}
		prefixes = append(prefixes, p.Masked())
	}
	return prefixes, nil
}
