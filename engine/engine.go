package engine

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Config holds the engine's limits and collaborators. Start from
// DefaultConfig; every limit has a name and a default.
type Config struct {
	HoldTTL           time.Duration // how long a hold reserves its units
	OrderTTL          time.Duration // payment window of a pending order; 0 turns it off
	QueuedWebhookTTL  time.Duration // how long a webhook for a missing order waits
	QueuedWebhooksMax int           // webhooks waiting at once; beyond: CodeTooManyQueued
	// IdempotencyKeyTTL is how long answers are at least remembered under
	// their key; they are forgotten by generation, at most TTL/8 later.
	IdempotencyKeyTTL time.Duration
	// IdempotencyKeyBytesMax is the memory the remembered answers of both
	// namespaces (holds and webhooks) may take; once it is used up, a
	// request under a new key gets CodeKeyTableFull while known keys still
	// replay. About 50 bytes plus the key per answer (see keyTable).
	IdempotencyKeyBytesMax int64
	InboxCap               int           // commands queued per product; beyond: CodeOverloaded
	SweepInterval          time.Duration // how often forgotten keys and stale queued webhooks are dropped
	// ExpiredHoldRetention is how long an expired hold is still reported as
	// "expired" across a snapshot; older ones are left out of snapshots.
	ExpiredHoldRetention time.Duration

	Clock   Clock
	Journal Journal

	// RefuseFromDurableCounts says that the published (durable) counts are
	// the newest acknowledged state, as on a single node whose journal is
	// its own disk. A hold without an idempotency key for more units than
	// they show available, while no deadline of theirs is due, is then
	// refused (CodeInsufficientStock) from them at once, without a trip
	// through the product's actor and the journal: the crowd after a
	// sell-out costs only its HTTP. A cluster's partition engines leave it
	// off: a leader deposed without knowing it yet could refuse from counts
	// that its successor has raised since.
	RefuseFromDurableCounts bool

	// IDStride and IDResidue confine the ids this engine hands out (order
	// ids, and product ids the admin API assigns) to the residue class
	// id mod IDStride == IDResidue. A cluster runs one engine per partition
	// with IDStride = the partition count, so ids are unique cluster-wide
	// and name their partition. IDStride 0 or 1 hands out every id.
	IDStride, IDResidue uint64

	// OnKeyBudgetWarning, if set, is called when the idempotency keys'
	// memory crosses 80 % of IdempotencyKeyBytesMax upward (once per
	// crossing; it re-arms when the use falls below 80 %). It is called
	// from whatever goroutine remembered the answer, replay included, so
	// it must not block.
	OnKeyBudgetWarning func(usedBytes, maxBytes int64)

	// OnRefundNeeded, if set, is called (from an actor goroutine, so it must
	// not block) when a success arrives for an order already cancelled.
	OnRefundNeeded func(orderID, productID uint64)
}

// DefaultConfig is docs/API.md's defaults, with the system clock and no journal.
func DefaultConfig() Config {
	return Config{
		HoldTTL:                2 * time.Minute,
		OrderTTL:               15 * time.Minute,
		QueuedWebhookTTL:       time.Hour,
		QueuedWebhooksMax:      100_000,
		IdempotencyKeyTTL:      24 * time.Hour,
		IdempotencyKeyBytesMax: DefaultIdempotencyKeyBytesMax,
		InboxCap:               4096,
		SweepInterval:          time.Minute,
		ExpiredHoldRetention:   24 * time.Hour,
		Clock:                  SystemClock{},
	}
}

// DefaultIdempotencyKeyBytesMax is the default key budget: 2 GiB, about 23
// million remembered answers under 36-byte keys.
const DefaultIdempotencyKeyBytesMax = 2 << 30

// IdempotencyKeyBytesLimit is the largest key budget New accepts.
const IdempotencyKeyBytesLimit = 256 << 30

// TTLMax is the longest TTL or retention New accepts: 30 days. It keeps
// every deadline (a timestamp plus a TTL) far inside int64 nanoseconds.
const TTLMax = 30 * 24 * time.Hour

// StockMax is the largest total stock of a product (docs/API.md: numbers up to
// 10^12): creating or restocking beyond it is CodeInvalidArgument.
const StockMax = 1_000_000_000_000

// Stats counts what the engine did since it started (replay included).
// The counts restart from zero with the process (a snapshot does not carry
// them); OrdersPending and the IdempotencyKey gauges are values now, not
// counts since start, and are right after a restart from a snapshot too.
type Stats struct {
	HoldsCreated, HoldsExpired, HoldsReplayed                  atomic.Int64
	OrdersCreated, OrdersPaid, OrdersCancelled, OrdersTimedOut atomic.Int64
	WebhooksApplied, WebhooksNotApplied, WebhooksQueued        atomic.Int64
	WebhooksReplayed, RefundsNeeded, RecordsReplayed           atomic.Int64

	OrdersPending atomic.Int64 // gauge: orders that are pending now (restored from a snapshot too)

	IdempotencyKeys        atomic.Int64 // gauge: answers remembered under keys, both namespaces
	IdempotencyKeyBytes    atomic.Int64 // gauge: the memory they take (arenas and indexes)
	IdempotencyKeysRefused atomic.Int64 // requests under a new key refused for the budget (CodeKeyTableFull)
}

// Engine is the flash sale: one actor per product, a journal behind them.
// Use: New, Replay every logged record, Start, Seed, serve, Stop.
type Engine struct {
	cfg     Config
	clock   Clock
	journal Journal

	productsMu sync.Mutex // serialises product creation only
	products   atomic.Pointer[productSet]

	holdKeys    *keyTable
	webhookKeys *keyTable
	orders      *orderDir
	lastOrderID atomic.Uint64

	stats     Stats
	replaying bool // true until Start; read by actors only after Start
	started   bool
	stopping  atomic.Bool
	failCode  atomic.Uint32 // OK until the journal fails; then the Code that refuses every command
	// clockFloorNanos is the latest timestamp used or replayed: the
	// engine's time never goes below it (see nowNanos).
	clockFloorNanos atomic.Int64
	// keyHook, set by tests only, runs at the stages of a keyed request
	// (see keyStage), so that tests can make one panic.
	keyHook func(keyStage)

	actorsWG    sync.WaitGroup
	janitorQuit chan struct{}
	janitorDone chan struct{}
}

// productSet is an immutable snapshot of the products, replaced on creation,
// so that lookups on the hot path take no lock.
type productSet struct {
	byID    map[uint64]*actor
	ordered []*actor // by id
}

// New makes an engine in its replay phase.
func New(cfg Config) *Engine {
	if cfg.Journal == nil {
		panic("engine: Config.Journal is nil")
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.IDStride == 0 {
		cfg.IDStride = 1
	}
	if cfg.IDResidue >= cfg.IDStride {
		panic(fmt.Sprintf("engine: IDResidue %d is not below IDStride %d", cfg.IDResidue, cfg.IDStride))
	}
	if cfg.HoldTTL <= 0 || cfg.QueuedWebhookTTL <= 0 || cfg.IdempotencyKeyTTL <= 0 || cfg.OrderTTL < 0 ||
		cfg.QueuedWebhooksMax <= 0 || cfg.IdempotencyKeyBytesMax <= 0 || cfg.InboxCap <= 0 || cfg.SweepInterval <= 0 || cfg.ExpiredHoldRetention <= 0 {
		panic(fmt.Sprintf("engine: invalid config %+v", cfg))
	}
	for _, d := range []struct {
		name string
		ttl  time.Duration
	}{{"HoldTTL", cfg.HoldTTL}, {"OrderTTL", cfg.OrderTTL}, {"QueuedWebhookTTL", cfg.QueuedWebhookTTL},
		{"IdempotencyKeyTTL", cfg.IdempotencyKeyTTL}, {"ExpiredHoldRetention", cfg.ExpiredHoldRetention}} {
		if d.ttl > TTLMax {
			panic(fmt.Sprintf("engine: %s %v is above TTLMax %v", d.name, d.ttl, TTLMax))
		}
	}
	if cfg.IdempotencyKeyBytesMax > IdempotencyKeyBytesLimit {
		panic(fmt.Sprintf("engine: IdempotencyKeyBytesMax %d is above %d", cfg.IdempotencyKeyBytesMax, int64(IdempotencyKeyBytesLimit)))
	}
	e := &Engine{
		cfg:       cfg,
		clock:     cfg.Clock,
		journal:   cfg.Journal,
		orders:    newOrderDir(cfg.QueuedWebhooksMax),
		replaying: true,
	}
	budget := newKeyBudget(cfg.IdempotencyKeyBytesMax, &e.stats, cfg.OnKeyBudgetWarning)
	e.holdKeys = newKeyTable(int64(cfg.IdempotencyKeyTTL), budget)
	e.webhookKeys = newKeyTable(int64(cfg.IdempotencyKeyTTL), budget)
	e.products.Store(&productSet{byID: map[uint64]*actor{}})
	return e
}

// Stats returns the engine's live counters.
func (e *Engine) Stats() *Stats { return &e.stats }

// QueuedWebhooks is how many webhooks wait now for an order that does not
// exist yet (at most Config.QueuedWebhooksMax).
func (e *Engine) QueuedWebhooks() int64 { return e.orders.queuedCount.Load() }

// IdempotencyKeyBytesMax is the engine's key budget (Config's), for a
// dashboard to draw the warning line against Stats.IdempotencyKeyBytes.
func (e *Engine) IdempotencyKeyBytesMax() int64 { return e.cfg.IdempotencyKeyBytesMax }

// Replay applies one logged record. Call it for every record, in log order,
// from one goroutine, before Start.
func (e *Engine) Replay(rec []byte) (err error) {
	if e.started {
		return errors.New("engine: Replay after Start")
	}
	var r record
	if err := decodeRecord(rec, &r); err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("engine: record kind %d does not apply: %v", r.kind, p)
		}
	}()
	e.stats.RecordsReplayed.Add(1)
	e.raiseClockFloor(r.atNanos)
	switch r.kind {
	case recProductCreated:
		if e.actor(r.product) != nil {
			return fmt.Errorf("engine: product %d created twice in the log", r.product)
		}
		e.addProduct(&r)
	case recWebhookQueued:
		s := e.orders.shard(r.orderID)
		s.mu.Lock()
		e.queueWebhookLocked(s, &r)
		s.mu.Unlock()
	default:
		a := e.actor(r.product)
		if a == nil {
			return fmt.Errorf("engine: record kind %d names unknown product %d", r.kind, r.product)
		}
		a.apply(&r)
		// A replica serves product reads while it replays (cluster
		// followers): its counts are the committed log's.
		a.published.store(a.counts, a.releaseDueNanos())
	}
	return nil
}

// Start ends replay and starts the actors. Holds and orders whose deadline
// passed while the process was down are released at once, as records.
func (e *Engine) Start() {
	if e.started {
		panic("engine: Start twice")
	}
	e.replaying = false
	e.started = true
	actors := e.products.Load().ordered
	for _, a := range actors {
		e.startActor(a)
	}
	// One round trip through each actor: its first step releases what
	// expired while the process was down, and the answer waits until that
	// is durable and published, so the first read after Start is exact.
	for _, a := range actors {
		c := getCommand(cmdSync)
		a.call(c)
		putCommand(c)
	}
	e.janitorQuit = make(chan struct{})
	e.janitorDone = make(chan struct{})
	go e.janitor()
}

func (e *Engine) startActor(a *actor) {
	a.published.store(a.counts, a.releaseDueNanos())
	e.actorsWG.Add(1)
	go a.run()
}

// Stop refuses new commands, answers those queued with CodeShuttingDown and
// returns once every answer in flight has been released. Stop the transport
// first: a command submitted after Stop returns is never answered.
func (e *Engine) Stop() {
	if !e.started || e.stopping.Swap(true) {
		return
	}
	close(e.janitorQuit)
	<-e.janitorDone
	for _, a := range e.products.Load().ordered {
		close(a.quit)
	}
	e.actorsWG.Wait()
}

// Seed creates specs if the log held nothing: a seed catalog is loaded only
// into an empty data directory. It reports whether it created anything.
func (e *Engine) Seed(specs []ProductSpec) (bool, error) {
	if e.stats.RecordsReplayed.Load() > 0 || len(e.products.Load().ordered) > 0 {
		return false, nil
	}
	for _, s := range specs {
		if _, code := e.CreateProduct(s); code != OK {
			return false, fmt.Errorf("engine: seeding product %d %q: %s", s.ID, s.Name, code)
		}
	}
	return true, nil
}

func (e *Engine) actor(id uint64) *actor { return e.products.Load().byID[id] }

// addProduct creates the product's actor from its record and publishes it.
func (e *Engine) addProduct(r *record) *actor {
	a := newActor(e, r)
	old := e.products.Load()
	next := &productSet{byID: make(map[uint64]*actor, len(old.byID)+1), ordered: make([]*actor, 0, len(old.ordered)+1)}
	for id, x := range old.byID {
		next.byID[id] = x
	}
	next.byID[a.id] = a
	next.ordered = append(append(next.ordered, old.ordered...), a)
	sort.Slice(next.ordered, func(i, j int) bool { return next.ordered[i].id < next.ordered[j].id })
	e.products.Store(next)
	return a
}

// noteOrderID keeps lastOrderID at the largest id in use, so ids are never
// reused for the life of the log.
func (e *Engine) noteOrderID(id uint64) {
	for {
		cur := e.lastOrderID.Load()
		if id <= cur || e.lastOrderID.CompareAndSwap(cur, id) {
			return
		}
	}
}

// refuse returns the code that refuses every command now, or OK.
func (e *Engine) refuse() Code {
	if e.stopping.Load() {
		return CodeShuttingDown
	}
	return Code(e.failCode.Load())
}

// journalFailed records that the journal failed with err and returns the
// Code that refuses every later command: a journal failure is permanent
// (see Journal). An error with an Unavailable() bool method that says true
// (a cluster journal that lost its leadership or its majority) refuses
// with CodeUnavailable, a 503 the client retries elsewhere; any other with
// CodeJournalFailed.
func (e *Engine) journalFailed(err error) Code {
	code := CodeJournalFailed
	var u interface{ Unavailable() bool }
	if errors.As(err, &u) && u.Unavailable() {
		code = CodeUnavailable
	}
	e.failCode.CompareAndSwap(uint32(OK), uint32(code))
	return Code(e.failCode.Load())
}

// nextID is the smallest id above last in the engine's residue class.
func (e *Engine) nextID(last uint64) uint64 {
	stride, residue := e.cfg.IDStride, e.cfg.IDResidue
	next := last + 1
	return next + (residue+stride-next%stride)%stride
}

// allocOrderID hands out the next order id of the engine's residue class.
func (e *Engine) allocOrderID() uint64 {
	for {
		cur := e.lastOrderID.Load()
		next := e.nextID(cur)
		if e.lastOrderID.CompareAndSwap(cur, next) {
			return next
		}
	}
}

// OwnsID reports whether id is in the engine's residue class.
func (e *Engine) OwnsID(id uint64) bool { return id%e.cfg.IDStride == e.cfg.IDResidue }

// submit hands a record made outside any actor (product creation, queued
// webhooks) to the journal; the returned function waits until it is durable
// and returns OK, or the Code that refuses it when the journal failed.
func (e *Engine) submit(r *record) (wait func() Code) {
	errc := make(chan error, 1)
	e.journal.Submit([][]byte{appendRecord(nil, r)}, func(err error) { errc <- err })
	return func() Code {
		if err := <-errc; err != nil {
			return e.journalFailed(err)
		}
		return OK
	}
}

// nowNanos is the time a new record carries: the wall clock, but never
// earlier than a timestamp already used or replayed. A clock stepped back
// (or a new cluster leader whose clock is behind the old one's) then
// neither stretches holds nor orders records out of time; it only pauses
// the engine's time until the wall clock catches up.
func (e *Engine) nowNanos() int64 {
	return e.raiseClockFloor(e.clock.Now().UnixNano())
}

// clockNanos is the time nowNanos would return, without raising the floor
// (no write, so that readers on many goroutines do not contend).
func (e *Engine) clockNanos() int64 {
	return max(e.clock.Now().UnixNano(), e.clockFloorNanos.Load())
}

// raiseClockFloor makes t the floor if it is later, and returns the floor.
func (e *Engine) raiseClockFloor(t int64) int64 {
	for {
		floor := e.clockFloorNanos.Load()
		if t <= floor {
			return floor
		}
		if e.clockFloorNanos.CompareAndSwap(floor, t) {
			return t
		}
	}
}

func (e *Engine) janitor() {
	defer close(e.janitorDone)
	t := e.clock.NewTimer(e.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-e.janitorQuit:
			return
		case <-t.C():
			e.sweep(e.clock.Now())
			t.Reset(e.cfg.SweepInterval)
		}
	}
}

// sweep frees the idempotency-key generations past their retention and
// queued webhooks past their deadline. Neither changes an answer: lookups
// already skip a dead generation, and a stale queued webhook would not be
// applied.
func (e *Engine) sweep(now time.Time) {
	e.holdKeys.sweep(now.UnixNano())
	e.webhookKeys.sweep(now.UnixNano())
	e.orders.sweep(now.UnixNano())
}

// CheckInvariant verifies the stock arithmetic of every product's published
// counts, for tests and audits.
func (e *Engine) CheckInvariant() error {
	for _, a := range e.products.Load().ordered {
		c, _ := a.published.load()
		if c.available < 0 || c.reserved < 0 || c.sold < 0 || c.total != c.available+c.reserved+c.sold {
			return fmt.Errorf("product %d: total=%d available=%d reserved=%d sold=%d", a.id, c.total, c.available, c.reserved, c.sold)
		}
	}
	return nil
}

// Fail makes the engine refuse every later command as if its journal had
// failed with err (see journalFailed): a cluster node calls it on the live
// engine of a partition it no longer leads, before it drops that engine.
func (e *Engine) Fail(err error) { e.journalFailed(err) }
