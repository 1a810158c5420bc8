package crash

import (
	"fmt"
	"math/rand"
	"sync"
	"time"
)

// mark is where the write-ahead log ended when an answer arrived: the newest
// segment file and its size. The record behind the answer lies entirely
// before that point, because the server answers only once the record is
// written. The zero mark lies before everything.
type mark struct {
	segment string // segment file name, 20 digits; "" is before every segment
	bytes   int64  // size of that segment
}

// damagePoint is the first damaged byte of the log: an offset in a segment.
type damagePoint struct {
	segment string
	offset  int64
}

// before reports whether a record that ended by m lies entirely before d,
// so must survive damage at d.
func (m mark) before(d damagePoint) bool {
	return m.segment < d.segment || (m.segment == d.segment && m.bytes <= d.offset)
}

// holdEntry is an acknowledged hold (a 201 of POST /api/holds).
type holdEntry struct {
	hold           holdJSON
	expiresAt      time.Time
	at             mark
	orderAttempted bool  // POST /api/orders was sent for it, answered or not
	orderID        int64 // the order an answer gave, 0 if none did
}

// orderEntry is an acknowledged order and what was acknowledged about it.
type orderEntry struct {
	order     orderJSON // as created
	createdAt mark
	acks      []statusAck // statuses acknowledged later (webhook answers)
	picked    bool        // handed out by pendingOrder
}

// statusAck is an order status stated by an acknowledged answer.
type statusAck struct {
	status string
	at     mark
}

// queuedAck is an acknowledged 202 of the payment webhook.
type queuedAck struct {
	webhookStatus string
	at            mark
}

// keyedAnswer is a stable answer to a request under an Idempotency-Key: the
// same request must get it again, byte for byte, marked as replayed.
type keyedAnswer struct {
	path, key, body string
	first           reply
	at              mark
}

// problemsMax caps the problems a ledger keeps; one is enough to fail.
const problemsMax = 50

// ledger records every acknowledged answer of a run and every request whose
// effect is uncertain (sent, not answered). It is safe for concurrent use.
type ledger struct {
	mu        sync.Mutex
	holds     map[string]*holdEntry
	holdList  []string // tokens in acknowledgement order
	orders    map[int64]*orderEntry
	orderList []int64 // ids in acknowledgement order
	keyed     []keyedAnswer
	sent      map[int64]map[string]bool // webhook statuses sent per order id, answered or not
	queued    map[int64]queuedAck       // 202 answers: webhooks stored for orders not yet created
	problems  []string
	counts    map[string]int // answers by kind, for the test log
}

func newLedger() *ledger {
	return &ledger{holds: map[string]*holdEntry{}, orders: map[int64]*orderEntry{}, counts: map[string]int{},
		sent: map[int64]map[string]bool{}, queued: map[int64]queuedAck{}}
}

// problem records a broken promise seen during the load.
func (l *ledger) problem(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.problems) < problemsMax {
		l.problems = append(l.problems, fmt.Sprintf(format, args...))
	}
}

func (l *ledger) count(kind string) {
	l.mu.Lock()
	l.counts[kind]++
	l.mu.Unlock()
}

func (l *ledger) addHold(h holdJSON, at mark) {
	exp, err := time.Parse(time.RFC3339, h.ExpiresAt)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.problems = append(l.problems, fmt.Sprintf("hold %s: expires_at %q: %v", h.HoldToken, h.ExpiresAt, err))
	}
	if _, dup := l.holds[h.HoldToken]; dup {
		l.problems = append(l.problems, fmt.Sprintf("hold token %s handed out twice", h.HoldToken))
		return
	}
	l.holds[h.HoldToken] = &holdEntry{hold: h, expiresAt: exp, at: at}
	l.holdList = append(l.holdList, h.HoldToken)
}

func (l *ledger) noteOrderAttempt(token string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.holds[token].orderAttempted = true
}

// addOrder records an acknowledged POST /api/orders answer for the hold token.
func (l *ledger) addOrder(token string, o orderJSON, at mark) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.holds[token]
	switch {
	case o.HoldToken != token || o.ProductID != h.hold.ProductID || o.Qty != h.hold.Qty:
		l.problems = append(l.problems, fmt.Sprintf("POST /api/orders {hold_token:%s} (hold %+v) answered order %+v", token, h.hold, o))
		return
	case h.orderID != 0 && h.orderID != o.OrderID:
		l.problems = append(l.problems, fmt.Sprintf("hold %s made two orders: %d and %d", token, h.orderID, o.OrderID))
		return
	}
	h.orderID = o.OrderID
	if e, ok := l.orders[o.OrderID]; ok {
		if e.order.HoldToken != token {
			l.problems = append(l.problems, fmt.Sprintf("order id %d given to holds %s and %s", o.OrderID, e.order.HoldToken, token))
		}
		l.addStatusLocked(e, o.Status, at)
		return
	}
	if o.Status != statusPending && !l.sent[o.OrderID][statusWebhook(o.Status)] {
		l.problems = append(l.problems, fmt.Sprintf("order %d was created %s, but no such webhook was sent for it: %+v", o.OrderID, o.Status, o))
	}
	if o.Status != statusPending {
		l.counts["order created "+o.Status]++
	}
	e := &orderEntry{order: o, createdAt: at}
	l.orders[o.OrderID] = e
	l.orderList = append(l.orderList, o.OrderID)
	l.addStatusLocked(e, o.Status, at)
}

func (l *ledger) noteWebhookSent(orderID int64, webhookStatus string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sent[orderID] == nil {
		l.sent[orderID] = map[string]bool{}
	}
	l.sent[orderID][webhookStatus] = true
}

// claimQueueTarget picks an order id well past the highest acknowledged
// one, that no webhook was sent for yet, for a webhook that should be
// queued; ok is false if there is none.
func (l *ledger) claimQueueTarget(rng *rand.Rand) (id int64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var highest int64
	for _, id := range l.orderList {
		highest = max(highest, id)
	}
	id = highest + queueAheadMin + rng.Int63n(queueAheadSpread)
	if l.sent[id] != nil {
		return 0, false
	}
	l.sent[id] = map[string]bool{}
	return id, true
}

// knownOrder reports whether the order's creation was acknowledged.
func (l *ledger) knownOrder(id int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.orders[id]
	return ok
}

// addQueued records a 202 of the payment webhook: the event is stored and
// must apply when that order is created.
func (l *ledger) addQueued(orderID int64, webhookStatus string, at mark) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queued[orderID] = queuedAck{webhookStatus: webhookStatus, at: at}
}

// addWebhookAnswer records a 200 of the payment webhook for an order.
func (l *ledger) addWebhookAnswer(orderID int64, webhookStatus string, w webhookJSON, at mark) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w.OrderID != orderID || w.Applied == nil {
		l.problems = append(l.problems, fmt.Sprintf("webhook %s for order %d answered %+v", webhookStatus, orderID, w))
		return
	}
	if *w.Applied && w.Status != webhookOutcome(webhookStatus) {
		l.problems = append(l.problems, fmt.Sprintf("webhook %s for order %d applied, yet the order is %q", webhookStatus, orderID, w.Status))
	}
	if e, ok := l.orders[orderID]; ok {
		l.addStatusLocked(e, w.Status, at)
	}
}

// addStatusLocked records an acknowledged order status and flags two
// different final statuses. Answers are recorded in the order they arrive,
// which need not be the order the server made them in, so a pending answer
// recorded after a final one proves nothing.
func (l *ledger) addStatusLocked(e *orderEntry, status string, at mark) {
	switch status {
	case statusPending:
	case statusPaid, statusCancelled:
		for _, a := range e.acks {
			if a.status != statusPending && a.status != status {
				l.problems = append(l.problems, fmt.Sprintf("order %d was acknowledged %s and %s: a final state changed", e.order.OrderID, a.status, status))
			}
		}
	default:
		l.problems = append(l.problems, fmt.Sprintf("order %d: unknown status %q", e.order.OrderID, status))
		return
	}
	e.acks = append(e.acks, statusAck{status: status, at: at})
}

func (l *ledger) addKeyed(path, key, body string, first reply, at mark) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keyed = append(l.keyed, keyedAnswer{path: path, key: key, body: body, first: first, at: at})
}

// openHold picks an acknowledged hold that no order was requested for and
// that has a second or more to live, and marks it as about to be ordered.
func (l *ledger) openHold(rng *rand.Rand) (holdJSON, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for try := 0; try < 8 && len(l.holdList) > 0; try++ {
		h := l.holds[l.holdList[rng.Intn(len(l.holdList))]]
		if !h.orderAttempted && time.Until(h.expiresAt) > time.Second {
			h.orderAttempted = true
			return h.hold, true
		}
	}
	return holdJSON{}, false
}

// pendingOrder picks an acknowledged order that is pending as far as the
// ledger knows, that no webhook was sent for and that no other caller
// picked.
func (l *ledger) pendingOrder(rng *rand.Rand) (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for try := 0; try < 8 && len(l.orderList) > 0; try++ {
		e := l.orders[l.orderList[rng.Intn(len(l.orderList))]]
		if !e.picked && len(l.sent[e.order.OrderID]) == 0 && e.acks[len(e.acks)-1].status == statusPending {
			e.picked = true
			return e.order.OrderID, true
		}
	}
	return 0, false
}

// summary is one line of what the ledger holds.
func (l *ledger) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("%d acknowledged holds, %d orders, %d keyed answers; answers by kind %v",
		len(l.holds), len(l.orders), len(l.keyed), l.counts)
}

// mustSurviveSummary says how many of the ledger's acknowledged holds,
// orders and keyed answers survives requires, so a test log shows how much
// a check covered.
func (l *ledger) mustSurviveSummary(survives survival) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	holds, orders, keyed := 0, 0, 0
	for _, h := range l.holds {
		if survives(h.at) {
			holds++
		}
	}
	for _, o := range l.orders {
		if survives(o.createdAt) {
			orders++
		}
	}
	for _, k := range l.keyed {
		if survives(k.at) {
			keyed++
		}
	}
	return fmt.Sprintf("must survive: %d of %d holds, %d of %d orders, %d of %d keyed answers",
		holds, len(l.holds), orders, len(l.orders), keyed, len(l.keyed))
}
