package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulseplatform/pulse/pkg/channel"
)

// Billing event types.
const (
	BillingInvoice    = "invoice"
	BillingPayment    = "payment"
	BillingUsageAlert = "usage_alert"
)

// BillingEvent is published on tenant:<tenant>:billing. Amounts are in minor
// units of Currency (cents), never floats.
type BillingEvent struct {
	TenantID string `json:"tenantId"`
	Type     string `json:"type"`
	// Status is issued|overdue for invoices, succeeded|failed for payments,
	// warning|exceeded for usage alerts.
	Status       string    `json:"status"`
	Amount       int64     `json:"amount"`
	Currency     string    `json:"currency"`
	InvoiceID    string    `json:"invoiceId,omitempty"`
	PlanName     string    `json:"planName"`
	UsagePercent int       `json:"usagePercent,omitempty"`
	Message      string    `json:"message"`
	Timestamp    time.Time `json:"timestamp"`
}

type plan struct {
	name     string
	price    int64 // minor units per cycle
	currency string
}

// Read-only tables of the billing model.
var (
	plans           = []plan{{"starter", 2900, "EUR"}, {"pro", 9900, "EUR"}, {"business", 29900, "USD"}, {"enterprise", 99900, "USD"}}
	declineReasons  = []string{"card_declined", "insufficient_funds"}
	usageThresholds = []int{80, 90, 100}
)

type invoice struct {
	id       string
	amount   int64
	failures int
}

type account struct {
	plan     plan
	invoices int
	open     *invoice
	usage    int // percent of the plan's limit
}

// billing keeps one account per tenant: usage climbs through 80/90/100 %,
// invoices are issued, and payments succeed or fail until paid.
type billing struct {
	rng      *rand.Rand
	tenants  []string
	channels []channel.Channel
	accounts []*account
}

func newBilling(seed int64, tenants []string) (*billing, error) {
	chs, err := tenantChannels(tenants, "billing")
	if err != nil {
		return nil, err
	}
	b := &billing{rng: newRand(seed, "billing"), tenants: tenants, channels: chs}
	for range tenants {
		b.accounts = append(b.accounts, &account{plan: plans[b.rng.IntN(len(plans))], usage: 40 + b.rng.IntN(30)})
	}
	return b, nil
}

func money(amount int64, currency string) string {
	return fmt.Sprintf("%d.%02d %s", amount/100, amount%100, currency)
}

func (b *billing) next(now time.Time) (channel.Channel, any) {
	i := b.rng.IntN(len(b.tenants))
	a := b.accounts[i]
	ev := BillingEvent{TenantID: b.tenants[i], PlanName: a.plan.name, Currency: a.plan.currency, Timestamp: now}
	r := b.rng.Float64()

	switch {
	case a.open != nil && r < 0.5:
		inv := a.open
		ev.Type, ev.InvoiceID, ev.Amount = BillingPayment, inv.id, inv.amount
		if b.rng.Float64() < 0.8 {
			ev.Status = "succeeded"
			ev.Message = fmt.Sprintf("Payment of %s received for %s", money(inv.amount, a.plan.currency), inv.id)
			a.open = nil
		} else {
			inv.failures++
			ev.Status = "failed"
			ev.Message = fmt.Sprintf("Payment for %s failed (%s), attempt %d; retrying",
				inv.id, declineReasons[b.rng.IntN(len(declineReasons))], inv.failures)
		}
	case r < 0.8:
		// Jump to the next threshold so every event is an alert.
		next := usageThresholds[len(usageThresholds)-1]
		for _, t := range usageThresholds {
			if a.usage < t {
				next = t
				break
			}
		}
		a.usage = next + b.rng.IntN(5)
		ev.Type, ev.UsagePercent = BillingUsageAlert, a.usage
		ev.Status = "warning"
		if a.usage >= 100 {
			ev.Status = "exceeded"
		}
		ev.Message = fmt.Sprintf("Usage at %d%% of the %s plan limit", a.usage, a.plan.name)
		if a.usage >= 100 {
			a.usage = 40 + b.rng.IntN(30) // a new cycle starts
		}
	case a.open != nil:
		inv := a.open
		ev.Type, ev.Status, ev.InvoiceID, ev.Amount = BillingInvoice, "overdue", inv.id, inv.amount
		ev.Message = fmt.Sprintf("Invoice %s for %s is overdue", inv.id, money(inv.amount, a.plan.currency))
	default:
		a.invoices++
		inv := &invoice{id: fmt.Sprintf("inv-%s-%04d", b.tenants[i], a.invoices), amount: a.plan.price}
		a.open = inv
		ev.Type, ev.Status, ev.InvoiceID, ev.Amount = BillingInvoice, "issued", inv.id, inv.amount
		ev.Message = fmt.Sprintf("Invoice %s for %s issued (%s plan)", inv.id, money(inv.amount, a.plan.currency), a.plan.name)
	}
	return b.channels[i], ev
}

// RunBilling publishes billing events to tenant:<t>:billing at cfg.Rate
// until ctx is done or cfg.Duration has passed (then it returns nil). It
// returns an error for an invalid cfg or when an event could not be stored
// within cfg.RetryFor.
func RunBilling(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	b, err := newBilling(cfg.Seed, cfg.Tenants)
	if err != nil {
		return err
	}
	return run(ctx, js, cfg, "billing", b.next, nil)
}
