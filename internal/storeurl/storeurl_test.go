package storeurl_test

import (
	"context"
	"strings"
	"testing"

	"github.com/broodhq/brood/internal/storeurl"
)

// This test binary does not link store/redisstore: the error must say how
// to link it.
func TestUnlinkedBackendSaysWhatToImport(t *testing.T) {
	_, err := storeurl.Open(context.Background(), "redis://user:secret@127.0.0.1:6379/0", "$BROOD_STORE", "app", nil)
	if err == nil || !strings.Contains(err.Error(), `import _ "github.com/broodhq/brood/store/redisstore"`) {
		t.Fatalf("err = %v; want it to name the import", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatalf("err = %v shows the password", err)
	}
	for _, bad := range []string{"not a url", "ftp://x", "127.0.0.1:6379"} {
		if _, err := storeurl.Open(context.Background(), bad, "$BROOD_STORE", "app", nil); err == nil || !strings.Contains(err.Error(), "$BROOD_STORE") {
			t.Errorf("Open(%q): %v; want an error naming $BROOD_STORE", bad, err)
		}
	}
}
