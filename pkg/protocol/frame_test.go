package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func TestDecodeCommandsBatched(t *testing.T) {
	t.Parallel()
	frame := []byte(`{"id":1,"subscribe":{"channel":"tenant:acme:a","flag":1}}` + "\n" + `{"id":2,"unsubscribe":{"channel":"x"}}` + "\n")
	cmds, err := DecodeCommands(frame)
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 2 || cmds[0].Subscribe.Channel != "tenant:acme:a" || cmds[0].Subscribe.Flag != 1 || cmds[1].Unsubscribe == nil || cmds[1].ID != 2 {
		t.Fatalf("unexpected commands %+v %+v", cmds[0], cmds[1])
	}
}

func TestDecodeCommandsPong(t *testing.T) {
	t.Parallel()
	cmds, err := DecodeCommands([]byte("{}"))
	if err != nil || len(cmds) != 1 || !cmds[0].IsPong() {
		t.Fatalf("pong not recognised: %v %v", cmds, err)
	}
}

func TestDecodeCommandsRejectsGarbage(t *testing.T) {
	t.Parallel()
	for _, f := range []string{"", "\n", "not json", `{"id":1}` + "\n\n" + `{"id":2}`, `[1,2]`, `{"id":-1}`, `{"id":"x"}`} {
		if _, err := DecodeCommands([]byte(f)); !errors.Is(err, ErrBadFrame) {
			t.Errorf("DecodeCommands(%q) err = %v, want ErrBadFrame", f, err)
		}
	}
	var many bytes.Buffer
	for i := 0; i <= MaxCommandsPerFrame; i++ {
		many.WriteString("{}\n")
	}
	if _, err := DecodeCommands(many.Bytes()); !errors.Is(err, ErrBadFrame) {
		t.Errorf("oversized batch accepted: %v", err)
	}
}

func TestToRawKeepsFramingSafe(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{`{"a":1}`, `{"a":1}`},
		{"{\n \"a\": [1,\n2]\n}", `{"a":[1,2]}`},
		{"plain text\nline", `"plain text\nline"`},
		{"", `null`},
		{`"s"`, `"s"`},
	}
	for _, tt := range tests {
		got := ToRaw([]byte(tt.in))
		if string(got) != tt.want {
			t.Errorf("ToRaw(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestEncodePublication(t *testing.T) {
	t.Parallel()
	b, err := EncodePublication("tenant:acme:deployments", &Publication{Data: ToRaw([]byte(`{"x":1}`)), Offset: 15})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"push":{"channel":"tenant:acme:deployments","pub":{"data":{"x":1},"offset":15}}}`
	if string(b) != want {
		t.Fatalf("got %s want %s", b, want)
	}
	r, _ := EncodeReply(&Reply{ID: 3, History: &HistoryResult{Publications: []*Publication{}, Epoch: "e"}})
	if string(r) != `{"id":3,"history":{"publications":[],"epoch":"e","offset":0}}` {
		t.Fatalf("history reply %s", r)
	}
	e, _ := EncodeReply(&Reply{ID: 1, Error: ErrPermissionDenied})
	if string(e) != `{"id":1,"error":{"code":103,"message":"permission denied"}}` {
		t.Fatalf("error reply %s", e)
	}
	u, _ := EncodeReply(&Reply{ID: 2, Unsubscribe: &Empty{}})
	if string(u) != `{"id":2,"unsubscribe":{}}` {
		t.Fatalf("unsubscribe reply %s", u)
	}
}

func TestErrorWithMessageMatchesBase(t *testing.T) {
	t.Parallel()
	e := ErrBadRequest.WithMessage("bad channel")
	if !errors.Is(e, ErrBadRequest) || errors.Is(e, ErrPermissionDenied) || ErrBadRequest.Message != "bad request" {
		t.Fatal("WithMessage broke identity or mutated the base")
	}
}

func FuzzDecodeCommands(f *testing.F) {
	f.Add([]byte(`{"id":1,"connect":{"token":"x"}}`))
	f.Add([]byte("{}\n{}"))
	f.Add([]byte(`{"id":2,"subscribe":{"channel":"a","offset":18446744073709551615}}`))
	f.Fuzz(func(t *testing.T, frame []byte) {
		cmds, err := DecodeCommands(frame)
		if err != nil {
			return
		}
		for _, c := range cmds {
			if _, err := json.Marshal(c); err != nil {
				t.Fatalf("decoded command does not re-encode: %v", err)
			}
		}
	})
}

// FuzzEncodePublication: the hand-written encoding of a live publication
// is valid JSON, one line, and means exactly what encoding/json's does, for
// any payload a worker may send (through ToRaw) and any channel name.
func FuzzEncodePublication(f *testing.F) {
	f.Add("tenant:acme:deployments", []byte(`{"id":"d-1","status":"running"}`), uint64(42), int64(0))
	f.Add("tenant:acme:x", []byte(`{"a": [1, 2, "<&>"]}`), uint64(1), int64(1700000000000))
	f.Add("weird\"chan\\<>", []byte("not json\nat all"), uint64(0), int64(-1))
	f.Add("", []byte(nil), uint64(18446744073709551615), int64(0))
	f.Fuzz(func(t *testing.T, channel string, payload []byte, offset uint64, ts int64) {
		pub := &Publication{Data: ToRaw(payload), Offset: offset, Time: ts}
		got, err := EncodePublication(channel, pub)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		want, err := json.Marshal(&Reply{Push: &Push{Channel: channel, Pub: pub}})
		if err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		if bytes.ContainsAny(got, "\r\n") {
			t.Fatalf("frame holds a line break: %q", got)
		}
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("not JSON: %q: %v", got, err)
		}
		if err := json.Unmarshal(want, &w); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("encoded %s\nencoding/json %s", got, want)
		}
	})
}
