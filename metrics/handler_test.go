package metrics

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// promhttpBody is what promhttp serves for fams with the Accept header
// given, uncompressed: the reference serve must match.
func promhttpBody(t *testing.T, fams []*dto.MetricFamily, accept string) string {
	t.Helper()
	g := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return fams, nil })
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept", accept)
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(g, promhttp.HandlerOpts{EnableOpenMetrics: true, DisableCompression: true}).ServeHTTP(rec, req)
	return rec.Body.String()
}

// serveBody is what serve answers, decompressed if it compressed.
func serveBody(t *testing.T, c *encodeCache, fams []*dto.MetricFamily, accept string, gz bool) (string, http.Header) {
	t.Helper()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept", accept)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	rec := httptest.NewRecorder()
	serve(rec, req, c, func(context.Context) ([]*dto.MetricFamily, error) { return fams, nil })
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var r io.Reader = rec.Body
	if rec.Header().Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(rec.Body)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), rec.Header()
}

func counterFamily(name string, v float64) *dto.MetricFamily {
	return &dto.MetricFamily{Name: &name, Help: ptrTo("h"), Type: dto.MetricType_COUNTER.Enum(),
		Metric: []*dto.Metric{{Counter: &dto.Counter{Value: &v}}}}
}

func ptrTo[T any](v T) *T { return &v }

// TestServeEncodesAsPromhttpDoes: in every format, with and without gzip,
// and on a second scrape where one family changed and the other is the
// same (cached) one, serve's body is promhttp's.
func TestServeEncodesAsPromhttpDoes(t *testing.T) {
	a, b := counterFamily("a_total", 1), counterFamily("b_total", 2)
	for _, accept := range []string{
		"",
		"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
		"application/openmetrics-text;version=1.0.0",
	} {
		var c encodeCache
		for _, gz := range []bool{false, true} {
			fams := []*dto.MetricFamily{a, b}
			got, h := serveBody(t, &c, fams, accept, gz)
			if want := promhttpBody(t, fams, accept); got != want {
				t.Fatalf("Accept %q gzip %v: body\n%q\nwant promhttp's\n%q", accept, gz, got, want)
			}
			if gz != (h.Get("Content-Encoding") == "gzip") {
				t.Fatalf("Accept-Encoding gzip %v: Content-Encoding %q", gz, h.Get("Content-Encoding"))
			}
			if ct, want := h.Get("Content-Type"), string(expfmt.NegotiateIncludingOpenMetrics(http.Header{"Accept": {accept}})); ct != want {
				t.Fatalf("Content-Type %q, want %q", ct, want)
			}
			fams = []*dto.MetricFamily{a, counterFamily("b_total", 5)}
			got, _ = serveBody(t, &c, fams, accept, gz)
			if want := promhttpBody(t, fams, accept); got != want {
				t.Fatalf("Accept %q gzip %v, after b_total changed: body\n%q\nwant promhttp's\n%q", accept, gz, got, want)
			}
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"":                       false,
		"gzip":                   true,
		"deflate, GZIP;q=0.5":    true,
		"gzip;q=0":               false,
		"*":                      true,
		"identity":               false,
		"br, gzip ; q=0.1, zstd": true,
	} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}
