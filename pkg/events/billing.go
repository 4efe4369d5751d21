package events

import "time"

// Billing kinds (Billing.Type), as in the original design's BillingEvent.
const (
	BillingInvoice      = "invoice"
	BillingPayment      = "payment"
	BillingPlanChange   = "plan_change"
	BillingUsageAlert   = "usage_alert"
	BillingSubscription = "subscription"
)

// Billing statuses, per kind.
const (
	InvoiceOpen    = "open"    // issued, waiting for payment
	InvoicePaid    = "paid"    // settled by a payment
	InvoiceOverdue = "overdue" // past its due date, unpaid
	InvoiceVoid    = "void"    // written off when the subscription was cancelled

	PaymentSucceeded = "succeeded"
	PaymentFailed    = "failed"

	PlanUpgraded   = "upgraded"
	PlanDowngraded = "downgraded"

	UsageWarning  = "warning"  // 80 %
	UsageCritical = "critical" // 90 %
	UsageExceeded = "exceeded" // 100 %

	SubscriptionActive    = "active"
	SubscriptionPastDue   = "past_due"
	SubscriptionSuspended = "suspended"
	SubscriptionCancelled = "cancelled"
)

// Payment failure reasons (BillingMetadata.Reason), as card processors name
// them.
const (
	DeclineCardDeclined      = "card_declined"
	DeclineInsufficientFunds = "insufficient_funds"
	DeclineExpiredCard       = "expired_card"
)

// Billing is the data of every io.pulse.billing.* event, published on
// tenant:<tenant>:billing. Money is always an integer amount of the
// currency's minor unit (cents) with an ISO 4217 code, never a float.
type Billing struct {
	TenantID string `json:"tenantId"`
	// Type is invoice, payment, plan_change, usage_alert or subscription.
	Type   string `json:"type"`
	Status string `json:"status"`
	// Amount, in minor units: an invoice's total, a payment's amount, a
	// plan change's net proration (> 0 charged now, < 0 credited to the
	// next invoice), a usage alert's overage charge so far, a
	// subscription's price per interval.
	Amount         int64  `json:"amount"`
	Currency       string `json:"currency"`
	SubscriptionID string `json:"subscriptionId"`
	InvoiceID      string `json:"invoiceId,omitempty"`
	PaymentID      string `json:"paymentId,omitempty"`
	PlanName       string `json:"planName"`
	Message        string `json:"message"`
	// Invoice is set on invoice events.
	Invoice   *InvoiceDetails `json:"invoice,omitempty"`
	Metadata  BillingMetadata `json:"metadata"`
	Timestamp time.Time       `json:"timestamp"`
}

// InvoiceDetails are an invoice's lines and totals: Subtotal is the sum of
// the lines' amounts, Tax is Subtotal × TaxRateBps / 10000 rounded half up,
// and Total = Subtotal + Tax = Billing.Amount.
type InvoiceDetails struct {
	PeriodStart time.Time  `json:"periodStart"`
	PeriodEnd   time.Time  `json:"periodEnd"`
	DueDate     time.Time  `json:"dueDate"`
	LineItems   []LineItem `json:"lineItems"`
	Subtotal    int64      `json:"subtotal"`
	// TaxRateBps is the tax rate in basis points (1900 = 19 %).
	TaxRateBps int   `json:"taxRateBps"`
	Tax        int64 `json:"tax"`
	Total      int64 `json:"total"`
}

// LineItem is one line of an invoice: Amount = Quantity × UnitAmount.
// Credits (unused time on a downgraded plan, a credit balance) are negative.
type LineItem struct {
	Description string `json:"description"`
	Quantity    int64  `json:"quantity"`
	UnitAmount  int64  `json:"unitAmount"`
	Amount      int64  `json:"amount"`
}

// BillingMetadata carries what one kind of billing event adds; every field
// is optional and only the ones that apply are set.
type BillingMetadata struct {
	// Product is what the subscription is for, e.g. "Managed Odoo".
	Product string `json:"product,omitempty"`
	// Interval is the plan's billing interval: month or year.
	Interval string `json:"interval,omitempty"`

	// Payments.
	Attempt     int       `json:"attempt,omitempty"`
	MaxAttempts int       `json:"maxAttempts,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	NextRetryAt time.Time `json:"nextRetryAt,omitzero"`
	CardBrand   string    `json:"cardBrand,omitempty"`
	CardLast4   string    `json:"cardLast4,omitempty"`

	// Overdue invoices.
	DaysOverdue int `json:"daysOverdue,omitempty"`

	// Plan changes.
	FromPlan        string `json:"fromPlan,omitempty"`
	ToPlan          string `json:"toPlan,omitempty"`
	ProrationCredit int64  `json:"prorationCredit,omitempty"`
	ProrationCharge int64  `json:"prorationCharge,omitempty"`

	// Usage alerts.
	Resource   string `json:"resource,omitempty"`
	Unit       string `json:"unit,omitempty"`
	Usage      int64  `json:"usage,omitempty"`
	Limit      int64  `json:"limit,omitempty"`
	Percentage int    `json:"percentage,omitempty"`
	Threshold  int    `json:"threshold,omitempty"`

	// Subscriptions: the status before this event.
	PreviousStatus string `json:"previousStatus,omitempty"`
}

// Admin billing alert kinds (AdminBillingAlert.Kind).
const (
	AdminPaymentFailed           = "payment_failed"
	AdminInvoiceOverdue          = "invoice_overdue"
	AdminSubscriptionSuspended   = "subscription_suspended"
	AdminSubscriptionReactivated = "subscription_reactivated"
	AdminSubscriptionCancelled   = "subscription_cancelled"
)

// AdminBillingAlert is the data of io.pulse.admin.billing.alert, published on
// admin:billing:alerts for the platform team.
type AdminBillingAlert struct {
	AlertID        string `json:"alertId"`
	Kind           string `json:"kind"`
	Severity       string `json:"severity"`
	TenantID       string `json:"tenantId"`
	SubscriptionID string `json:"subscriptionId"`
	InvoiceID      string `json:"invoiceId,omitempty"`
	// Amount at stake, in minor units of Currency.
	Amount    int64     `json:"amount"`
	Currency  string    `json:"currency"`
	Message   string    `json:"message"`
	Timestamp time.Time `json:"timestamp"`
}
