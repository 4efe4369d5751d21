// Package channel is the one place where client-supplied channel names are
// parsed and turned into NATS subjects (DESIGN §2).
//
// It is pure: no NATS, no network. It must never produce a subject that
// contains a wildcard, a dot inside a token, or a namespace other than the one
// the channel names; every other package builds subjects only through it.
package channel

import (
	"errors"
	"fmt"
	"strings"
)

// Namespace is the first part of a channel name.
type Namespace string

// The namespaces Pulse knows. Anything else is refused.
const (
	Tenant Namespace = "tenant"
	Admin  Namespace = "admin"
	System Namespace = "system"
)

// LivePrefix is the subject prefix under which streams RePublish stored events.
const LivePrefix = "live."

// MaxTokenLen is the longest token allowed in a channel or subject.
const MaxTokenLen = 64

// Named errors, so callers can map them to protocol codes and users get a
// message they can act on.
var (
	ErrEmpty            = errors.New("channel name is empty")
	ErrUnknownNamespace = errors.New("unknown channel namespace (want tenant:, admin: or system:)")
	ErrBadToken         = errors.New("channel token must match [A-Za-z0-9_-]{1,64}")
	ErrPartCount        = errors.New("wrong number of channel parts")
	ErrBadSubject       = errors.New("subject does not map to a channel")
)

type nsInfo struct {
	subjectRoot string
	stream      string
	minTokens   int // tokens after the namespace
	maxTokens   int
	shape       string
}

var namespaces = map[Namespace]nsInfo{
	Tenant: {subjectRoot: "tenants", stream: "TENANTS", minTokens: 2, maxTokens: 2, shape: "tenant:<tenant>:<resource>"},
	Admin:  {subjectRoot: "admin", stream: "ADMIN", minTokens: 1, maxTokens: 2, shape: "admin:<scope>[:<topic>]"},
	System: {subjectRoot: "system", stream: "SYSTEM", minTokens: 1, maxTokens: 2, shape: "system:<component>[:<event>]"},
}

var subjectRoots = map[string]Namespace{"tenants": Tenant, "admin": Admin, "system": System}

// Channel is a parsed, validated channel name. The zero value is not valid;
// obtain one from Parse or FromSubject.
type Channel struct {
	name   string
	ns     Namespace
	tokens []string // after the namespace
}

// Parse validates a channel name such as "tenant:acme:deployments".
func Parse(name string) (Channel, error) {
	if name == "" {
		return Channel{}, ErrEmpty
	}
	parts := strings.Split(name, ":")
	ns := Namespace(parts[0])
	info, ok := namespaces[ns]
	if !ok {
		return Channel{}, fmt.Errorf("%q: %w", name, ErrUnknownNamespace)
	}
	tokens := parts[1:]
	if len(tokens) < info.minTokens || len(tokens) > info.maxTokens {
		return Channel{}, fmt.Errorf("%q: %w: want %s", name, ErrPartCount, info.shape)
	}
	for _, t := range tokens {
		if !ValidToken(t) {
			return Channel{}, fmt.Errorf("%q: %w", name, ErrBadToken)
		}
	}
	return Channel{name: name, ns: ns, tokens: tokens}, nil
}

// FromSubject maps a NATS subject (with or without the live. prefix) back to
// its channel.
func FromSubject(subject string) (Channel, error) {
	subject = strings.TrimPrefix(subject, LivePrefix)
	parts := strings.Split(subject, ".")
	ns, ok := subjectRoots[parts[0]]
	if !ok {
		return Channel{}, fmt.Errorf("%q: %w", subject, ErrBadSubject)
	}
	c, err := Parse(string(ns) + ":" + strings.Join(parts[1:], ":"))
	if err != nil {
		return Channel{}, fmt.Errorf("%q: %w: %w", subject, ErrBadSubject, err)
	}
	return c, nil
}

// ValidToken reports whether t matches [A-Za-z0-9_-]{1,64}.
func ValidToken(t string) bool {
	if len(t) == 0 || len(t) > MaxTokenLen {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// Name is the channel as clients write it.
func (c Channel) Name() string { return c.name }

// String implements fmt.Stringer.
func (c Channel) String() string { return c.name }

// Namespace is the channel's namespace.
func (c Channel) Namespace() Namespace { return c.ns }

// Tokens are the parts after the namespace; callers must not modify them.
func (c Channel) Tokens() []string { return c.tokens }

// Tenant is the tenant id of a tenant channel, "" for other namespaces.
func (c Channel) Tenant() string {
	if c.ns != Tenant {
		return ""
	}
	return c.tokens[0]
}

// Subject is the NATS subject workers publish to and the stream stores.
func (c Channel) Subject() string {
	if c.ns == "" {
		return ""
	}
	return namespaces[c.ns].subjectRoot + "." + strings.Join(c.tokens, ".")
}

// LiveSubject is the RePublish destination carrying live copies.
func (c Channel) LiveSubject() string { return LivePrefix + c.Subject() }

// Stream is the JetStream stream that stores this channel.
func (c Channel) Stream() string { return namespaces[c.ns].stream }

// Streams lists every stream name, in a stable order.
func Streams() []string { return []string{"TENANTS", "ADMIN", "SYSTEM"} }

// Match reports whether the channel name matches pattern, where a "*" token in
// the pattern matches exactly one token ("tenant:acme:*"). A pattern with a
// different number of parts never matches.
func Match(pattern, name string) bool {
	if pattern == name {
		return true
	}
	pp := strings.Split(pattern, ":")
	np := strings.Split(name, ":")
	if len(pp) != len(np) {
		return false
	}
	for i := range pp {
		if pp[i] != "*" && pp[i] != np[i] {
			return false
		}
	}
	return true
}
