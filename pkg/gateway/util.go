package gateway

import (
	"crypto/rand"
	"encoding/binary"
	"strconv"
	"time"
)

func itoa(i int) string { return strconv.Itoa(i) }

// randInt63n is a uniform value in [0, n) for jitter; n must be > 0.
func randInt63n(n int64) int64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return int64(binary.LittleEndian.Uint64(b[:])>>1) % n
}

// ttlSeconds is the whole seconds left until t, at least 1.
func ttlSeconds(t time.Time) uint32 {
	d := time.Until(t)
	if d < time.Second {
		return 1
	}
	return uint32(d / time.Second)
}
