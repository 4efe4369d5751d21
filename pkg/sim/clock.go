package sim

import (
	"container/heap"
	"time"
)

// scheduler is a discrete-event simulation clock: actions are queued at
// simulated times and run in time order (ties in the order they were
// queued), so a model's output depends only on its seed, never on how fast
// the machine or NATS is. The publisher maps simulated time to real time
// with Config.Speed.
type scheduler struct {
	now time.Time
	q   actionQueue
	seq uint64
}

type action struct {
	at  time.Time
	seq uint64
	fn  func()
}

func newScheduler(start time.Time) *scheduler {
	return &scheduler{now: start}
}

// at queues fn at t (now if t is in the past).
func (s *scheduler) at(t time.Time, fn func()) {
	if t.Before(s.now) {
		t = s.now
	}
	s.seq++
	heap.Push(&s.q, action{at: t, seq: s.seq, fn: fn})
}

// after queues fn d after now.
func (s *scheduler) after(d time.Duration, fn func()) { s.at(s.now.Add(d), fn) }

// every runs fn at now+first and then every period until fn returns false.
func (s *scheduler) every(first, period time.Duration, fn func() bool) {
	var tick func()
	tick = func() {
		if fn() {
			s.after(period, tick)
		}
	}
	s.after(first, tick)
}

// peek is the time of the next action; ok is false when none is queued.
func (s *scheduler) peek() (time.Time, bool) {
	if len(s.q) == 0 {
		return time.Time{}, false
	}
	return s.q[0].at, true
}

// step advances the clock to the next action and runs it.
func (s *scheduler) step() bool {
	if len(s.q) == 0 {
		return false
	}
	a := heap.Pop(&s.q).(action)
	s.now = a.at
	a.fn()
	return true
}

type actionQueue []action

func (q actionQueue) Len() int { return len(q) }
func (q actionQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q actionQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *actionQueue) Push(x any)   { *q = append(*q, x.(action)) }
func (q *actionQueue) Pop() any {
	old := *q
	a := old[len(old)-1]
	old[len(old)-1] = action{}
	*q = old[:len(old)-1]
	return a
}
