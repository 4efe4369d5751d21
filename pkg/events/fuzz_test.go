package events

import (
	"encoding/json"
	"testing"
)

// FuzzParse feeds outside input (anything a worker might publish) to Parse
// and the Validator: they must never panic, and what Validate accepts must
// parse as an envelope of a known type.
func FuzzParse(f *testing.F) {
	v, err := NewValidator()
	if err != nil {
		f.Fatal(err)
	}
	for typ, data := range examples() {
		e, _ := New("id-1", "/src", typ, "s", at, data)
		b, _ := json.Marshal(e)
		f.Add(b)
	}
	f.Add([]byte(`{"specversion":"1.0"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, perr := Parse(b)
		if v.Validate(b) == nil {
			if perr != nil {
				t.Fatalf("valid by schema but Parse failed: %v", perr)
			}
		}
	})
}
