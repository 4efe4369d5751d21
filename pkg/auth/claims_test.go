package auth

import (
	"testing"

	"github.com/pulseplatform/pulse/pkg/channel"
)

func mustChannel(t *testing.T, name string) channel.Channel {
	t.Helper()
	c, err := channel.Parse(name)
	if err != nil {
		t.Fatalf("channel.Parse(%q): %v", name, err)
	}
	return c
}

func TestCanSubscribe(t *testing.T) {
	t.Parallel()
	member := &Claims{Subject: "u1", Tenant: "acme", Roles: []string{"member"}}
	tenantAdmin := &Claims{Subject: "u2", Tenant: "acme", Roles: []string{"tenant_admin"}}
	admin := &Claims{Subject: "root", Roles: []string{"admin"}}
	granted := &Claims{Subject: "u3", Tenant: "acme", Allow: Grants{Subscribe: []string{"tenant:globex:shared"}}}
	wildcard := &Claims{Subject: "u4", Allow: Grants{Subscribe: []string{"tenant:*:status"}}}
	noTenant := &Claims{Subject: "u5", Roles: []string{"member"}}
	publisher := &Claims{Subject: "u6", Tenant: "acme", Allow: Grants{Publish: []string{"tenant:globex:*"}}}
	tests := []struct {
		name   string
		claims *Claims
		ch     string
		want   bool
	}{
		{"member reads own tenant", member, "tenant:acme:deployments", true},
		{"member refused other tenant", member, "tenant:globex:deployments", false},
		{"member refused admin", member, "admin:platform:alerts", false},
		{"member refused admin short", member, "admin:metrics", false},
		{"member reads system", member, "system:health", true},
		{"member reads system two tokens", member, "system:gateway:started", true},
		{"tenant_admin is not platform admin", tenantAdmin, "tenant:globex:deployments", false},
		{"tenant_admin refused admin", tenantAdmin, "admin:platform:alerts", false},
		{"admin reads admin", admin, "admin:platform:alerts", true},
		{"admin reads any tenant", admin, "tenant:globex:deployments", true},
		{"admin reads another tenant", admin, "tenant:acme:billing", true},
		{"admin reads system", admin, "system:health", true},
		{"grant gives exactly that channel", granted, "tenant:globex:shared", true},
		{"grant gives nothing more", granted, "tenant:globex:deployments", false},
		{"grant keeps own tenant", granted, "tenant:acme:deployments", true},
		{"wildcard grant matches one token", wildcard, "tenant:globex:status", true},
		{"wildcard grant does not match other resource", wildcard, "tenant:globex:deployments", false},
		{"publish grant does not give read", publisher, "tenant:globex:deployments", false},
		{"no tenant cannot read tenant channel", noTenant, "tenant:acme:deployments", false},
		{"no tenant reads system", noTenant, "system:health", true},
		{"no tenant refused admin", noTenant, "admin:alerts", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.claims.CanSubscribe(mustChannel(t, tt.ch)); got != tt.want {
				t.Fatalf("CanSubscribe(%s) = %v, want %v", tt.ch, got, tt.want)
			}
		})
	}
}

func TestCanPublish(t *testing.T) {
	t.Parallel()
	collab := &Claims{Subject: "u1", Tenant: "acme", Allow: Grants{Publish: []string{"tenant:acme:collaboration"}}}
	admin := &Claims{Subject: "root", Roles: []string{"admin"}}
	member := &Claims{Subject: "u2", Tenant: "acme"}
	reader := &Claims{Subject: "u3", Tenant: "acme", Allow: Grants{Subscribe: []string{"tenant:acme:*"}}}
	wildcard := &Claims{Subject: "u4", Tenant: "acme", Allow: Grants{Publish: []string{"tenant:acme:*"}}}
	adminGranted := &Claims{Subject: "root", Roles: []string{"admin"}, Allow: Grants{Publish: []string{"admin:platform:alerts"}}}
	tests := []struct {
		name   string
		claims *Claims
		ch     string
		want   bool
	}{
		{"grant allows its channel", collab, "tenant:acme:collaboration", true},
		{"grant does not allow another channel of the tenant", collab, "tenant:acme:deployments", false},
		{"grant does not allow another tenant", collab, "tenant:globex:collaboration", false},
		{"grant does not allow system", collab, "system:health", false},
		{"admin without grant cannot publish", admin, "admin:platform:alerts", false},
		{"admin without grant cannot publish to tenant", admin, "tenant:acme:collaboration", false},
		{"admin with grant publishes there", adminGranted, "admin:platform:alerts", true},
		{"admin grant is exact", adminGranted, "admin:platform:events", false},
		{"member of tenant cannot publish", member, "tenant:acme:collaboration", false},
		{"subscribe grant does not give publish", reader, "tenant:acme:collaboration", false},
		{"wildcard publish grant", wildcard, "tenant:acme:chat", true},
		{"wildcard publish grant stays in tenant", wildcard, "tenant:globex:chat", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.claims.CanPublish(mustChannel(t, tt.ch)); got != tt.want {
				t.Fatalf("CanPublish(%s) = %v, want %v", tt.ch, got, tt.want)
			}
		})
	}
}

func TestPermissionsRefuseZeroValues(t *testing.T) {
	t.Parallel()
	var nilClaims *Claims
	ch := mustChannel(t, "system:health")
	if nilClaims.CanSubscribe(ch) || nilClaims.CanPublish(ch) || nilClaims.IsAdmin() {
		t.Fatal("nil claims granted something")
	}
	all := &Claims{Subject: "x", Roles: []string{"admin"}, Allow: Grants{Subscribe: []string{""}, Publish: []string{""}}}
	if all.CanSubscribe(channel.Channel{}) || all.CanPublish(channel.Channel{}) {
		t.Fatal("zero channel allowed")
	}
}
