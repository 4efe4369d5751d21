package channel

import (
	"errors"
	"strings"
	"testing"
)

func TestParseValidChannels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, subject, stream, tenant string
	}{
		{"tenant:acme:deployments", "tenants.acme.deployments", "TENANTS", "acme"},
		{"tenant:12345:deployments", "tenants.12345.deployments", "TENANTS", "12345"},
		{"tenant:acme:user_login", "tenants.acme.user_login", "TENANTS", "acme"},
		{"tenant:a-b_C9:x", "tenants.a-b_C9.x", "TENANTS", "a-b_C9"},
		{"admin:metrics", "admin.metrics", "ADMIN", ""},
		{"admin:alerts", "admin.alerts", "ADMIN", ""},
		{"admin:platform:events", "admin.platform.events", "ADMIN", ""},
		{"admin:platform:alerts", "admin.platform.alerts", "ADMIN", ""},
		{"system:health", "system.health", "SYSTEM", ""},
		{"system:gateway:started", "system.gateway.started", "SYSTEM", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.name)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.name, err)
			}
			if c.Subject() != tt.subject || c.Stream() != tt.stream || c.Tenant() != tt.tenant {
				t.Fatalf("got subject=%q stream=%q tenant=%q", c.Subject(), c.Stream(), c.Tenant())
			}
			if c.LiveSubject() != "live."+tt.subject {
				t.Fatalf("live subject %q", c.LiveSubject())
			}
			back, err := FromSubject(c.LiveSubject())
			if err != nil || back.Name() != tt.name {
				t.Fatalf("FromSubject(%q) = %v, %v", c.LiveSubject(), back, err)
			}
		})
	}
}

func TestParseRejectsBadChannels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want error
	}{
		{"", ErrEmpty},
		{"tenant", ErrPartCount},
		{"tenant:acme", ErrPartCount},
		{"tenant:acme:deployments:extra", ErrPartCount},
		{"tenant::deployments", ErrBadToken},
		{"tenant:acme:", ErrBadToken},
		{"tenant:ac.me:deployments", ErrBadToken},
		{"tenant:*:deployments", ErrBadToken},
		{"tenant:>:deployments", ErrBadToken},
		{"tenant:acme:deploy ments", ErrBadToken},
		{"tenant:acme:dé", ErrBadToken},
		{"tenant:" + strings.Repeat("a", 65) + ":x", ErrBadToken},
		{"admin", ErrPartCount},
		{"admin:a:b:c", ErrPartCount},
		{"system:", ErrBadToken},
		{"chat:42", ErrUnknownNamespace},
		{"Tenant:acme:x", ErrUnknownNamespace},
		{"$JS:API:x", ErrUnknownNamespace},
		{"live:tenants:acme", ErrUnknownNamespace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.name)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse(%q) error = %v, want %v", tt.name, err, tt.want)
			}
		})
	}
}

func TestFromSubjectRejectsForeignSubjects(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "foo.bar", "tenants.acme", "tenants.acme.x.y", "tenants.*.x", "$JS.API.INFO", "live.", "tenants.acme.>"} {
		if c, err := FromSubject(s); err == nil {
			t.Errorf("FromSubject(%q) = %v, want error", s, c)
		}
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"tenant:acme:*", "tenant:acme:deployments", true},
		{"tenant:acme:*", "tenant:globex:deployments", false},
		{"tenant:*:presence", "tenant:globex:presence", true},
		{"tenant:acme:collaboration", "tenant:acme:collaboration", true},
		{"tenant:acme:*", "tenant:acme", false},
		{"admin:*", "admin:platform:alerts", false},
		{"admin:*:*", "admin:platform:alerts", true},
		{"*", "system:health", false},
	}
	for _, tt := range tests {
		if got := Match(tt.pattern, tt.name); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

// FuzzParse checks that no input yields an unsafe subject.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"tenant:acme:deployments", "admin:platform:alerts", "system:health", "tenant:a.b:c", "tenant:*:>", "admin::", "system:x:y:z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		c, err := Parse(name)
		if err != nil {
			return
		}
		subj := c.Subject()
		if strings.ContainsAny(subj, "*> \t\r\n") {
			t.Fatalf("%q produced subject with wildcard or space: %q", name, subj)
		}
		parts := strings.Split(subj, ".")
		root := map[Namespace]string{Tenant: "tenants", Admin: "admin", System: "system"}[c.Namespace()]
		if parts[0] != root {
			t.Fatalf("%q produced subject %q outside namespace %q", name, subj, c.Namespace())
		}
		if len(parts) != len(c.Tokens())+1 {
			t.Fatalf("%q: a token contains a dot: %q", name, subj)
		}
		for _, p := range parts[1:] {
			if !ValidToken(p) {
				t.Fatalf("%q produced bad token %q", name, p)
			}
		}
		back, err := FromSubject(subj)
		if err != nil || back.Name() != name {
			t.Fatalf("round trip %q -> %q -> %v, %v", name, subj, back, err)
		}
	})
}
