package gateway

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/pulseplatform/pulse/pkg/channel"
)

func asError[T error](err error, target *T) bool { return errors.As(err, target) }

func base64URL(s string) string { return base64.URLEncoding.EncodeToString([]byte(s)) }

func decodeJSON(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

func mustParse(t *testing.T, name string) channel.Channel {
	t.Helper()
	ch, err := channel.Parse(name)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func splitToken(tok string) []string { return strings.SplitN(tok, ".", 3) }

func base64URLNoPad(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
