package sim

import (
	"fmt"
	"strings"
	"time"
)

// plan is a tier of the managed-hosting offer. Prices are per month in
// minor units of each currency; a yearly subscription pays ten months.
type plan struct {
	name  string
	tier  int
	price map[string]int64
	// Included per month.
	storageGB int64
	requests  int64
}

// Read-only tables of the billing model.
var plans = []plan{
	{"starter", 0, map[string]int64{"EUR": 2900, "USD": 2900, "GBP": 2500, "BRL": 14900}, 50, 1_000_000},
	{"pro", 1, map[string]int64{"EUR": 9900, "USD": 9900, "GBP": 8500, "BRL": 49900}, 250, 10_000_000},
	{"business", 2, map[string]int64{"EUR": 29900, "USD": 29900, "GBP": 25900, "BRL": 149900}, 1000, 50_000_000},
	{"enterprise", 3, map[string]int64{"EUR": 99900, "USD": 99900, "GBP": 85900, "BRL": 499900}, 5000, 250_000_000},
}

// Overage prices in minor units: per GB of storage above the plan, per
// 100 000 requests above it. BRL prices are five times the others.
var (
	storageOverage  = map[string]int64{"EUR": 10, "USD": 10, "GBP": 9, "BRL": 50}
	requestsOverage = map[string]int64{"EUR": 50, "USD": 50, "GBP": 45, "BRL": 250}
)

const requestsUnit = 100_000

// country is where a tenant is billed: its currency and VAT (or sales
// tax) rate in basis points.
type country struct {
	code     string
	currency string
	taxBps   int
}

var countries = []country{
	{"DE", "EUR", 1900}, {"FR", "EUR", 2000}, {"NL", "EUR", 2100}, {"PT", "EUR", 2300},
	{"US", "USD", 0}, {"GB", "GBP", 2000}, {"BR", "BRL", 500},
}

var cardBrands = []string{"visa", "visa", "mastercard", "mastercard", "amex"}

const (
	intervalMonth = "month"
	intervalYear  = "year"
)

// Dunning and collection schedule, counted from the invoice's issue.
var retrySchedule = []time.Duration{ // attempt 1 … 4
	time.Hour, 3 * 24 * time.Hour, 5 * 24 * time.Hour, 7 * 24 * time.Hour,
}

const (
	dueAfter     = 7 * 24 * time.Hour  // net 7
	overdueAfter = 8 * 24 * time.Hour  // the day after the due date
	suspendAfter = 14 * 24 * time.Hour // service suspended
	voidAfter    = 30 * 24 * time.Hour // written off, subscription cancelled
	day          = 24 * time.Hour
)

// Behaviour of customers and of the card network.
const (
	firstAttemptSuccess = 0.93
	retrySuccess        = 0.5
	cardUpdateAfterFail = 0.6  // customer fixes an expired card before the next retry
	payAfterSuspension  = 0.6  // customer pays by hand once suspended
	upgradeWhenExceeded = 0.35 // per day after a limit was exceeded
	downgradeWhenIdle   = 0.03 // per day late in a period when little is used
	spontaneousUpgrade  = 0.001
	churnAtRenewal      = 0.015
	annualShare         = 0.25
	maxSubsPerTenant    = 1000
	// eventsPerSubMonth is the measured mean number of billing events a
	// subscription produces per simulated month; it turns Config.Rate into a
	// number of subscriptions.
	eventsPerSubMonth = 3.0
)

// formatMoney prints minor units as "299.00 EUR".
func formatMoney(amount int64, currency string) string {
	sign := ""
	if amount < 0 {
		sign, amount = "-", -amount
	}
	return fmt.Sprintf("%s%d.%02d %s", sign, amount/100, amount%100, currency)
}

// formatCount prints 12500000 as "12,500,000".
func formatCount(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// taxOf is subtotal × bps / 10000 rounded half up (subtotal ≥ 0).
func taxOf(subtotal int64, bps int) int64 {
	return (subtotal*int64(bps) + 5000) / 10000
}

// prorate is amount × part / whole rounded half up.
func prorate(amount int64, part, whole time.Duration) int64 {
	if whole <= 0 {
		return 0
	}
	// Seconds keep the product within int64 for any plan price.
	p, w := int64(part/time.Second), int64(whole/time.Second)
	return (amount*p*2 + w) / (2 * w)
}

func periodLabel(from, to time.Time) string {
	return from.Format("2 Jan 2006") + " – " + to.Format("2 Jan 2006")
}
