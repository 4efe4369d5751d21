package natsembed

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
)

// logger adapts the server's printf-style logger to slog. It also remembers
// the first fatal message, because the server reports start-up failures such
// as "address already in use" only through its logger.
type logger struct {
	log *slog.Logger

	mu       sync.Mutex
	firstErr string
}

func newLogger(l *slog.Logger) *logger {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &logger{log: l.With("component", "nats-server")}
}

func (l *logger) emit(level slog.Level, format string, v ...any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, v...))
	}
}

func (l *logger) fatal() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.firstErr
}

// Noticef logs at Debug: the server's notices (banner, limits) are noise in
// the gateway's log.
func (l *logger) Noticef(format string, v ...any) { l.emit(slog.LevelDebug, format, v...) }

// Warnf logs at Warn.
func (l *logger) Warnf(format string, v ...any) { l.emit(slog.LevelWarn, format, v...) }

// Errorf logs at Error.
func (l *logger) Errorf(format string, v ...any) { l.emit(slog.LevelError, format, v...) }

// Fatalf logs at Error and records the message for Start; unlike the server's
// own logger it never exits the process.
func (l *logger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.mu.Lock()
	if l.firstErr == "" {
		l.firstErr = msg
	}
	l.mu.Unlock()
	l.log.Error(msg)
}

// Debugf is dropped: server debug logging is not enabled.
func (l *logger) Debugf(string, ...any) {}

// Tracef is dropped: server tracing is not enabled.
func (l *logger) Tracef(string, ...any) {}
