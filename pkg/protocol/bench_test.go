package protocol

import (
	"fmt"
	"testing"
)

var benchData = []byte(`{"tenantId":"acme","deploymentId":"dep-42","status":"in_progress","progress":40,"currentStep":"start containers"}`)

// BenchmarkEncodePublication is the per-message encode of live fan-out: one
// push, shared by every subscriber of the channel. plain is a worker's
// publication (written directly); tags takes encoding/json.
func BenchmarkEncodePublication(b *testing.B) {
	for _, tc := range []struct {
		name string
		pub  *Publication
	}{
		{"plain", &Publication{Data: ToRaw(benchData), Offset: 123456}},
		{"tags", &Publication{Data: ToRaw(benchData), Offset: 123456, Tags: map[string]string{"kind": "deployment"}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			var n int
			for b.Loop() {
				f, err := EncodePublication("tenant:acme:deployments", tc.pub)
				if err != nil {
					b.Fatal(err)
				}
				n = len(f)
			}
			b.ReportMetric(float64(n), "bytes/frame")
		})
	}
}

// BenchmarkEncodeRecoveryReply is the subscribe reply of a recovering
// client carrying the most missed publications (-recovery-limit 300).
func BenchmarkEncodeRecoveryReply(b *testing.B) {
	for _, n := range []int{10, 300} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			pubs := make([]*Publication, n)
			for i := range pubs {
				pubs[i] = &Publication{Data: ToRaw(benchData), Offset: uint64(1000 + i)}
			}
			r := &Reply{ID: 2, Subscribe: &SubscribeResult{Recoverable: true, Positioned: true, WasRecovering: true,
				Recovered: true, Epoch: "dn4v3p3kz12t", Offset: 999, Publications: pubs}}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := EncodeReply(r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/publication")
		})
	}
}

// BenchmarkDecodeCommands is the inbound side: a batched frame of a
// connect and a subscribe, as an SDK sends on reconnect.
func BenchmarkDecodeCommands(b *testing.B) {
	frame := []byte(`{"id":1,"connect":{"token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.sig","name":"js"}}` + "\n" +
		`{"id":2,"subscribe":{"channel":"tenant:acme:deployments","recover":true,"epoch":"dn4v3p3kz12t","offset":812,"flag":1}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeCommands(frame); err != nil {
			b.Fatal(err)
		}
	}
}
