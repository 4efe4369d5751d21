package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/pulseplatform/pulse/pkg/auth"
	"github.com/pulseplatform/pulse/pkg/protocol"
)

// subscriber is one raw client connection of a bench run, subscribed to one
// channel. Its reader goroutine is the only one touching the tracking
// fields; the scenario reads them after the readers have stopped.
type subscriber struct {
	i       int
	channel string
	ws      *websocket.Conn

	epoch  string
	offset uint64 // last publication offset seen, for recovery

	seen                 bitset
	maxOffset            uint64
	recv, dups, reorders int64

	recovering  bool
	recoveredAt time.Time
	recovered   bool
}

// benchFleet is the subscribers of a bench run and what they observed.
type benchFleet struct {
	cfg  BenchConfig
	base *fleet // dial options, error tally, counters
	subs []*subscriber
	hist latencyHist

	readers    sync.WaitGroup
	deliveries atomic.Int64
	bufs       sync.Pool
}

func newBenchFleet(cfg BenchConfig, channels func(i int) string) *benchFleet {
	bf := &benchFleet{cfg: cfg, base: newFleet(Config{URL: cfg.URL, ConnTimeout: cfg.ConnTimeout}, cfg.logger())}
	bf.bufs.New = func() any { b := make([]byte, 0, 4096); return &b }
	bf.subs = make([]*subscriber, cfg.Conns)
	for i := range bf.subs {
		bf.subs[i] = &subscriber{i: cfg.First + i, channel: channels(cfg.First + i)}
	}
	return bf
}

// token mints the connection token of subscriber i; the tenant claim is
// Pulse's, Centrifugo ignores it.
func (bf *benchFleet) token(i int) (string, error) {
	return auth.MintHMAC(bf.cfg.HMACSecret, "HS256", auth.TokenSpec{
		Subject: "bench-" + strconv.Itoa(i), Tenant: bf.cfg.Tenant, TTL: tokenTTL,
	})
}

// subscribeReply is the part of a subscribe reply the bench reads.
type subscribeReply struct {
	ID     uint32          `json:"id"`
	Error  *protocol.Error `json:"error"`
	Result *struct {
		Epoch        string `json:"epoch"`
		Offset       uint64 `json:"offset"`
		Recovered    bool   `json:"recovered"`
		Publications []struct {
			Data   json.RawMessage `json:"data"`
			Offset uint64          `json:"offset"`
		} `json:"publications"`
	} `json:"subscribe"`
}

// connect dials, connects and subscribes s, recovering from its last
// position when recover is set. The reply's publications are tracked like
// live ones.
func (bf *benchFleet) connect(ctx context.Context, s *subscriber, recover bool) error {
	ctx, cancel := context.WithTimeout(ctx, bf.cfg.ConnTimeout)
	defer cancel()
	tok, err := bf.token(s.i)
	if err != nil {
		return err
	}
	ws, _, err := websocket.Dial(ctx, bf.cfg.URL, bf.base.dial)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	ws.SetReadLimit(readLimit)
	if err := bf.base.call(ctx, ws, &protocol.Command{ID: 1, Connect: &protocol.ConnectRequest{Token: tok, Name: "pulse-bench"}}); err != nil {
		ws.CloseNow()
		return fmt.Errorf("connect: %w", err)
	}
	req := &protocol.SubscribeRequest{Channel: s.channel}
	if recover {
		req.Recover, req.Epoch, req.Offset = true, s.epoch, s.offset
	}
	b, err := json.Marshal(&protocol.Command{ID: 2, Subscribe: req})
	if err != nil {
		ws.CloseNow()
		return err
	}
	if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
		ws.CloseNow()
		return fmt.Errorf("subscribe: %w", err)
	}
	s.ws = ws
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			ws.CloseNow()
			return fmt.Errorf("subscribe: %w", err)
		}
		done, err := bf.frame(ctx, s, data, true)
		if err != nil {
			ws.CloseNow()
			return fmt.Errorf("subscribe: %w", err)
		}
		if done {
			return nil
		}
	}
}

// frame handles every line of one server frame. While waiting for the
// subscribe reply (handshake), it returns true once that reply came.
func (bf *benchFleet) frame(ctx context.Context, s *subscriber, data []byte, handshake bool) (bool, error) {
	replied := false
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		switch {
		case len(line) == 0:
		case bytes.Equal(line, protocol.PingFrame):
			if err := bf.base.pong(ctx, s.ws); err != nil {
				return replied, err
			}
		case bytes.HasPrefix(line, []byte(`{"push"`)) || bytes.Contains(line[:min(len(line), 16)], []byte(`"push"`)):
			bf.push(s, line)
		default:
			if !handshake {
				continue // a reply we did not wait for
			}
			var r subscribeReply
			if err := json.Unmarshal(line, &r); err != nil {
				return replied, fmt.Errorf("%w: %v", errBadFrame, err)
			}
			if r.ID != 2 {
				continue
			}
			if r.Error != nil {
				return replied, r.Error
			}
			if r.Result == nil {
				return replied, fmt.Errorf("%w: subscribe reply without result", errBadFrame)
			}
			replied = true
			if s.recovering {
				s.recovered = r.Result.Recovered
				s.recoveredAt = time.Now()
				s.recovering = false
				for _, p := range r.Result.Publications {
					bf.track(s, p.Data, p.Offset)
				}
			} else {
				s.epoch = r.Result.Epoch
				if r.Result.Offset > s.offset {
					s.offset = r.Result.Offset
				}
			}
		}
	}
	return replied, nil
}

var (
	keyPub    = []byte(`"pub":`)
	keyData   = []byte(`"data":`)
	keyOffset = []byte(`"offset":`)
)

// push tracks a publication push without a full JSON decode: the fan-out
// runs put hundreds of thousands of them per second through this process.
func (bf *benchFleet) push(s *subscriber, line []byte) {
	i := bytes.Index(line, keyPub)
	if i < 0 {
		return // join, leave, unsubscribe…
	}
	pub := line[i+len(keyPub):]
	j := bytes.Index(pub, keyData)
	if j < 0 {
		return
	}
	var off uint64
	if k := bytes.Index(pub, keyOffset); k >= 0 {
		off, _ = leadingUint(pub[k+len(keyOffset):])
	}
	bf.track(s, pub[j+len(keyData):], off)
}

// track records one publication whose data starts at data.
func (bf *benchFleet) track(s *subscriber, data []byte, offset uint64) {
	seq, sent, ok := parsePayload(data)
	if !ok {
		return
	}
	bf.deliveries.Add(1)
	s.recv++
	if offset > s.offset {
		s.offset = offset
	}
	if s.seen.set(seq) {
		s.dups++
		return
	}
	// Order is the server's: publishers run concurrently, so the payload
	// sequence need not follow the stream offsets.
	if offset < s.maxOffset {
		s.reorders++
	} else {
		s.maxOffset = offset
	}
	bf.hist.record(time.Since(time.Unix(0, sent)))
}

// parsePayload reads {"s":<seq>,"t":<unix ns>…} as written by payload.
func parsePayload(b []byte) (seq uint64, sent int64, ok bool) {
	rest, ok := bytes.CutPrefix(b, []byte(`{"s":`))
	if !ok {
		return 0, 0, false
	}
	seq, rest = leadingUint(rest)
	rest, ok = bytes.CutPrefix(rest, []byte(`,"t":`))
	if !ok {
		return 0, 0, false
	}
	t, _ := leadingUint(rest)
	return seq, int64(t), true
}

func leadingUint(b []byte) (uint64, []byte) {
	var n uint64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + uint64(b[i]-'0')
	}
	return n, b[i:]
}

// read runs s's reader until its connection ends; the frame buffer comes
// from a pool, so idle connections hold none.
func (bf *benchFleet) read(s *subscriber, stopping *atomic.Bool) {
	defer bf.readers.Done()
	ws := s.ws
	for {
		_, r, err := ws.Reader(bf.base.connCtx)
		if err == nil {
			bp := bf.bufs.Get().(*[]byte)
			buf := bytes.NewBuffer((*bp)[:0])
			_, err = buf.ReadFrom(r)
			if err == nil {
				_, err = bf.frame(bf.base.connCtx, s, buf.Bytes(), false)
			}
			*bp = buf.Bytes()[:0]
			bf.bufs.Put(bp)
		}
		if err != nil {
			if !stopping.Load() && !errors.Is(err, io.EOF) {
				bf.base.dropped.Add(1)
				bf.base.errs.add("read", err)
			}
			ws.CloseNow()
			return
		}
	}
}
