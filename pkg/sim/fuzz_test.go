package sim

import (
	"testing"

	"github.com/pulseplatform/pulse/pkg/channel"
)

// FuzzParseTenants: -tenants is outside input; whatever it accepts must be
// valid, distinct channel tokens.
func FuzzParseTenants(f *testing.F) {
	for _, s := range []string{"acme,globex", "3", "12345,", " a , b ", "a.b", "*", "", ",", "100001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := parseTenants(s)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, tn := range ts {
			if !channel.ValidToken(tn) || seen[tn] {
				t.Fatalf("parseTenants(%q) accepted %q", s, tn)
			}
			seen[tn] = true
		}
	})
}
