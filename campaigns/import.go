package campaigns

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/rapport/rapport/config"
)

// Import is one run of an import, kept so the web page can show progress
// and the result to whoever started it, from any web process.
type Import struct {
	ID         int64      `json:"id"`
	Kind       string     `json:"kind"`
	Filename   string     `json:"filename"`
	Status     string     `json:"status"` // running, done, failed
	BytesTotal int64      `json:"bytes_total"`
	BytesRead  int64      `json:"bytes_read"`
	RowsRead   int64      `json:"rows_read"`
	Inserted   int64      `json:"inserted"`
	Updated    int64      `json:"updated"`
	Unchanged  int64      `json:"unchanged"`
	Rejected   int64      `json:"rejected"`
	Problems   string     `json:"-"` // JSON []RowProblem
	Error      string     `json:"error,omitempty"`
	StartedBy  string     `json:"started_by"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	AliveAt    *time.Time `json:"-"` // the run's last heartbeat (importHeartbeat)
}

// An import's heartbeat: while it runs it writes alive_at this often, and
// a run not heard from for importStale is shown as stopped. Progress is
// not enough to tell: a large first load builds its indexes for a minute
// or more without any.
const (
	importHeartbeat = 30 * time.Second
	importStale     = 3 * time.Minute
)

// errImportVanished is why a run not heard from is shown as stopped.
const errImportVanished = "the import stopped without finishing (the process running it ended); upload the file again"

// showStopped shows a run whose heartbeat stopped as failed. Nothing is
// written: if it was only slow, its next save puts it right.
func (im *Import) showStopped(now time.Time) {
	if im.Status != "running" {
		return
	}
	alive := im.StartedAt
	if im.AliveAt != nil {
		alive = *im.AliveAt
	}
	if now.Sub(alive) > importStale {
		im.Status, im.Error = "failed", errImportVanished
	}
}

// RowProblem is a rejected row, or a warning about an accepted one. Row is
// the spreadsheet row: the header is row 1.
type RowProblem struct {
	Row     int    `json:"row"`
	Field   string `json:"field,omitempty"`
	Reason  string `json:"reason"`
	Warning bool   `json:"warning,omitempty"`
}

func (p RowProblem) String() string {
	kind := "rejected"
	if p.Warning {
		kind = "warning"
	}
	if p.Field != "" {
		return fmt.Sprintf("row %d %s: %s: %s", p.Row, kind, p.Field, p.Reason)
	}
	return fmt.Sprintf("row %d %s: %s", p.Row, kind, p.Reason)
}

// ProblemList decodes the stored problems.
func (im *Import) ProblemList() []RowProblem {
	var ps []RowProblem
	_ = json.Unmarshal([]byte(im.Problems), &ps)
	return ps
}

// Percent is how far the import has read its file.
func (im *Import) Percent() int {
	if im.Status != "running" {
		return 100
	}
	if im.BytesTotal <= 0 {
		return 0
	}
	return int(min(99, im.BytesRead*100/im.BytesTotal))
}

// ImportOptions describe an import run.
type ImportOptions struct {
	Filename string
	Size     int64  // bytes, for progress; 0 if unknown
	Actor    string // who started it
	// ImportID continues a run created by StartImport (the web upload);
	// 0 creates one.
	ImportID int64
	Progress func(Import) // called after each batch
}

// ImportResult is what an import did.
type ImportResult struct {
	Import
	// Problems are the rejected rows (up to maxProblems) and warnings (up
	// to maxWarnings), in row order. Warnings can come on every row (an
	// owner who left): capped apart, they cannot push a rejected row out.
	Problems     []RowProblem
	MoreWarnings int64 // warnings past maxWarnings, not listed
}

const (
	importBatch        = 5000  // rows per transaction; larger batches gained little
	customerRowBytes   = 100   // about how long a customer's CSV row is, to size a file in rows
	maxProblems        = 10000 // kept in memory and printed
	maxWarnings        = 1000  // warnings kept in memory and printed
	maxStoredProblems  = 500   // kept in the database for the web page, rejected rows first
	customerImportKind = "customers"
)

// ErrNotCSV is returned when a file is not a CSV with a recognisable header.
var ErrNotCSV = errors.New("not a CSV file")

// StartImport records a run before its file is read, so a page can follow it.
func (s *Store) StartImport(ctx context.Context, kind, filename string, size int64, actor string) (*Import, error) {
	now := s.now()
	im := &Import{Kind: kind, Filename: filename, Status: "running", BytesTotal: size, Problems: "[]",
		StartedBy: actor, StartedAt: now, AliveAt: &now}
	if err := s.db.WithContext(ctx).Create(im).Error; err != nil {
		return nil, err
	}
	return im, nil
}

// GetImport returns one import run.
func (s *Store) GetImport(ctx context.Context, id int64) (*Import, error) {
	var im Import
	if err := s.db.WithContext(ctx).Take(&im, id).Error; err != nil {
		return nil, notFound(err, "import", id)
	}
	im.showStopped(s.now())
	return &im, nil
}

// RecentImports lists the latest runs.
func (s *Store) RecentImports(ctx context.Context, limit int) ([]Import, error) {
	var ims []Import
	err := s.db.WithContext(ctx).Order("id DESC").Limit(limit).Find(&ims).Error
	for i := range ims {
		ims[i].showStopped(s.now())
	}
	return ims, err
}

// heartbeat writes the run's alive_at every interval until stop is called.
func (s *Store) heartbeat(ctx context.Context, id int64) (stop func()) {
	every := s.importBeat
	if every <= 0 {
		every = importHeartbeat
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				// A missed beat only makes the run look stopped later on.
				_ = s.db.WithContext(ctx).Model(&Import{}).Where("id = ? AND status = ?", id, "running").
					Update("alive_at", s.now()).Error
			}
		}
	}()
	return func() { cancel(); <-done }
}

// FailImport marks a run failed with a one-line reason.
func (s *Store) FailImport(ctx context.Context, id int64, reason string) error {
	now := s.now()
	return s.db.WithContext(ctx).Model(&Import{}).Where("id = ?", id).
		Updates(map[string]any{"status": "failed", "error": reason, "finished_at": now}).Error
}

// customerColumns maps header names to fields.
var customerColumns = []string{"external_id", "name", "email", "company", "metro_area", "annual_spend", "level", "owner_email", "phone"}

// ImportCustomers reads a customer CSV as a stream and upserts it in
// batches. Each bad row is rejected with its row number and reason and
// leaves nothing behind; good rows land. A file that is not CSV, or has no
// recognisable header, is refused before anything is written.
func (s *Store) ImportCustomers(ctx context.Context, r io.Reader, opt ImportOptions) (*ImportResult, error) {
	counter := &countingReader{r: r}
	br := bufio.NewReaderSize(counter, 64<<10)
	// A UTF-8 byte order mark goes before the CSV reader sees it: left in,
	// it made a quoted first header ("name",…) a bare quote.
	if b, _ := br.Peek(3); bytes.Equal(b, utf8BOM) {
		_, _ = br.Discard(3)
	}
	head, _ := br.Peek(4096)
	if err := looksLikeText(head); err != nil {
		return nil, s.failEarly(ctx, opt, err)
	}
	rl := &rowLimit{r: br}
	cr := csv.NewReader(rl)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, s.failEarly(ctx, opt, fmt.Errorf("%w: cannot read a header row: %v", ErrNotCSV, err))
	}
	cols, err := mapHeader(header)
	if err != nil {
		return nil, s.failEarly(ctx, opt, err)
	}

	var im *Import
	if opt.ImportID != 0 {
		if im, err = s.GetImport(ctx, opt.ImportID); err != nil {
			return nil, err
		}
	} else if im, err = s.StartImport(ctx, customerImportKind, opt.Filename, opt.Size, opt.Actor); err != nil {
		return nil, err
	}
	res := &ImportResult{Import: *im}
	defer s.heartbeat(ctx, im.ID)()
	meta := UpsertMeta{Actor: opt.Actor, Source: "import:" + itoa(im.ID), Rule: RuleImport}
	// A large file into an empty table is one fresh load (bulk.go): all or
	// nothing, and several times quicker than keeping every index up to
	// date. Its batches still go in one after another while the next is read.
	if opt.Size/customerRowBytes >= int64(s.freshLoadMin()) {
		meta.fresh = s.beginFreshLoad(ctx, int(opt.Size/customerRowBytes))
	}
	owners := newOwnerCache(s)
	seen := newSeenKeys(opt.Size / customerRowBytes)
	var rejects, warns int
	addProblem := func(p RowProblem) {
		switch {
		case p.Warning && warns >= maxWarnings:
			res.MoreWarnings++
		case p.Warning:
			warns++
			res.Problems = append(res.Problems, p)
		case rejects < maxProblems:
			rejects++
			res.Problems = append(res.Problems, p)
		}
	}
	// Batches are upserted in order, up to `window` at a time: PostgreSQL
	// spends most of an import maintaining indexes, and a second backend
	// does that on the second core. The file's own duplicates never reach
	// two batches (firstSeen), so concurrent batches touch different rows.
	window := 1
	if s.dialect == config.Postgres {
		window = 2
	}
	type pending struct {
		rows []int
		done chan struct{}
		out  []UpsertResult
		err  error
	}
	var last chan struct{} // the latest batch's done, which a fresh load's next batch waits for
	var inflight []*pending
	var lastSaved time.Time
	settle := func() error {
		p := inflight[0]
		inflight = inflight[1:]
		<-p.done
		if p.err != nil {
			return p.err
		}
		for i, o := range p.out {
			switch o.Outcome {
			case Inserted:
				res.Inserted++
			case Updated:
				res.Updated++
			case Unchanged:
				res.Unchanged++
			case Rejected:
				res.Rejected++
				for _, pr := range problemsOf(p.rows[i], o.Err) {
					addProblem(pr)
				}
			}
			for _, w := range o.Warnings {
				addProblem(RowProblem{Row: p.rows[i], Reason: w, Warning: true})
			}
		}
		res.BytesRead = counter.n
		// Progress is written twice a second, not per batch: each write is a
		// commit of its own.
		if time.Since(lastSaved) < 500*time.Millisecond {
			return nil
		}
		lastSaved = time.Now()
		shown := res.Import
		if meta.fresh != nil {
			shown.Inserted = 0 // nothing is in until the load commits
		}
		if err := s.saveProgress(ctx, &shown, res.Problems); err != nil {
			return err
		}
		if opt.Progress != nil {
			opt.Progress(shown)
		}
		return nil
	}
	// drain waits for every batch still running, keeping the first error.
	drain := func() error {
		var first error
		for len(inflight) > 0 {
			if err := settle(); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	// stop ends a run that cannot go on.
	stop := func(err error) (*ImportResult, error) {
		if ctx.Err() != nil {
			err = context.Cause(ctx) // why it was cut short, not how a query noticed
		}
		_ = drain()
		if meta.fresh != nil {
			meta.fresh.rollback()
			res.Inserted = 0
			err = fmt.Errorf("%w; nothing was imported (a large first import is all or nothing)", err)
		} else if n, cerr := s.createdBy(ctx, meta.Source); cerr == nil {
			// A batch cut short may have committed all the same (its
			// commit reached the database before the cancel did, and the
			// answer was lost), so what this run created is counted from
			// the ledger rows each batch writes with its customers.
			res.Inserted = n
		}
		return res, s.abort(ctx, res, err)
	}
	var batch []CustomerInput
	var rows []int
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		p := &pending{rows: rows, done: make(chan struct{})}
		go func(b []CustomerInput, prev chan struct{}) {
			defer close(p.done)
			if meta.fresh != nil && prev != nil {
				<-prev // one connection: batches take turns
			}
			p.out, p.err = s.upsertRows(ctx, b, meta, owners)
		}(batch, last)
		last = p.done
		inflight = append(inflight, p)
		batch, rows = make([]CustomerInput, 0, importBatch), make([]int, 0, importBatch)
		if len(inflight) >= window {
			return settle()
		}
		return nil
	}

	row := 1
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		rl.n = 0
		row++
		res.RowsRead++
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) && !errors.Is(pe.Err, csv.ErrFieldCount) {
				res.Rejected++
				// The reader goes on at the next line: a quote broken across
				// lines costs its row, and one left open at the end is the
				// file's last. The lines it took in are named: they are not
				// rows of their own, and nothing else would say so.
				why := "malformed CSV: " + pe.Err.Error()
				switch {
				case pe.Line == pe.StartLine+1:
					why += fmt.Sprintf("; the row began on line %d, and line %d was read into it, not imported", pe.StartLine, pe.Line)
				case pe.Line > pe.StartLine+1:
					why += fmt.Sprintf("; the row began on line %d, and lines %d–%d were read into it, not imported", pe.StartLine, pe.StartLine+1, pe.Line)
				}
				addProblem(RowProblem{Row: row, Reason: why})
				continue
			}
			if !errors.As(err, &pe) {
				return stop(fmt.Errorf("read row %d: %w", row, err))
			}
		}
		if isBlank(rec) {
			res.RowsRead--
			continue
		}
		in, problems := parseCustomerRow(rec, cols, len(header))
		if len(problems) == 0 {
			if first, field := seen.firstSeen(in, row); field != "" {
				problems = []RowProblem{{Field: field, Reason: fmt.Sprintf("the same customer is already on row %d of this file", first)}}
			}
		}
		if len(problems) > 0 {
			res.Rejected++
			for _, p := range problems {
				p.Row = row
				addProblem(p)
			}
			continue
		}
		batch = append(batch, in)
		rows = append(rows, row)
		if len(batch) >= importBatch {
			if err := flush(); err != nil {
				return stop(err)
			}
		}
		if err := ctx.Err(); err != nil {
			return stop(err)
		}
	}
	if err := flush(); err != nil {
		return stop(err)
	}
	if err := drain(); err != nil {
		return stop(err)
	}
	if fl := meta.fresh; fl != nil {
		meta.fresh = nil // committed or rolled back: stop must not roll it back again
		if err := fl.commit(ctx, meta.Source, meta.Actor); err != nil {
			if ctx.Err() != nil {
				err = context.Cause(ctx)
			}
			res.Inserted = 0
			return res, s.abort(ctx, res, fmt.Errorf("%w; nothing was imported (a large first import is all or nothing)", err))
		}
		s.forgetMetros()
	} else if s.dialect == config.Postgres && res.Inserted >= 10000 {
		// Fresh statistics let the planner use the audience indexes at once,
		// instead of when autovacuum next looks.
		_ = s.db.WithContext(ctx).Exec("ANALYZE customers").Error
	}
	now := s.now()
	slices.SortStableFunc(res.Problems, byRow)
	res.Status, res.FinishedAt, res.BytesRead = "done", &now, counter.n
	if err := s.saveProgress(ctx, &res.Import, res.Problems); err != nil {
		return res, err
	}
	if opt.Progress != nil {
		opt.Progress(res.Import)
	}
	return res, nil
}

// upsertRows upserts a batch in one transaction. If the database refuses
// the batch (another process inserted the same email a moment ago), each
// row is retried alone so only the offending row is rejected.
func (s *Store) upsertRows(ctx context.Context, batch []CustomerInput, meta UpsertMeta, owners *ownerCache) ([]UpsertResult, error) {
	attempt := func(ins []CustomerInput) ([]UpsertResult, error) {
		if meta.fresh != nil {
			return s.upsertBatch(ctx, nil, ins, meta, owners) // on the load's own transaction
		}
		var out []UpsertResult
		err := s.tx(ctx, func(tx *gorm.DB) error {
			var err error
			out, err = s.upsertBatch(ctx, tx, ins, meta, owners)
			return err
		})
		return out, err
	}
	out, err := attempt(append([]CustomerInput(nil), batch...))
	if err == nil || len(batch) == 1 || ctx.Err() != nil || errors.Is(err, errLoadBroken) {
		return out, err
	}
	out = make([]UpsertResult, len(batch))
	for i := range batch {
		r, err := attempt([]CustomerInput{batch[i]})
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			out[i] = UpsertResult{Outcome: Rejected, Err: fmt.Errorf("the database refused the row: %v", err)}
			continue
		}
		out[i] = r[0]
	}
	return out, nil
}

// createdBy counts the customers a source (an import run) created, from
// their "created" ledger rows; ctx may already be cancelled.
func (s *Store) createdBy(ctx context.Context, source string) (int64, error) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var n int64
	err := s.db.WithContext(cctx).Model(&LedgerEntry{}).Where("source = ? AND rule = ?", source, RuleCreated).Count(&n).Error
	return n, err
}

func (s *Store) saveProgress(ctx context.Context, im *Import, problems []RowProblem) error {
	js, _ := json.Marshal(storedProblems(problems))
	im.Problems = string(js)
	return s.db.WithContext(ctx).Model(&Import{}).Where("id = ?", im.ID).Updates(map[string]any{
		"status": im.Status, "bytes_read": im.BytesRead, "rows_read": im.RowsRead, "inserted": im.Inserted,
		"updated": im.Updated, "unchanged": im.Unchanged, "rejected": im.Rejected, "problems": im.Problems,
		"finished_at": im.FinishedAt, "error": im.Error,
	}).Error
}

// storedProblems are the problems the web page lists: rejected rows
// first, then warnings, up to maxStoredProblems, in row order. Batches
// finish out of the file's order, so problems are sorted here.
func storedProblems(problems []RowProblem) []RowProblem {
	stored := slices.Clone(problems)
	slices.SortStableFunc(stored, func(a, b RowProblem) int {
		if a.Warning != b.Warning {
			if a.Warning {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.Row, b.Row)
	})
	stored = stored[:min(len(stored), maxStoredProblems)]
	slices.SortStableFunc(stored, byRow)
	return stored
}

func byRow(a, b RowProblem) int { return cmp.Compare(a.Row, b.Row) }

// UnlistedRejects is how many rejected rows listed, the run's stored
// ProblemList, leaves out.
func (im *Import) UnlistedRejects(listed []RowProblem) int64 {
	n := im.Rejected
	for _, p := range listed {
		if !p.Warning {
			n--
		}
	}
	return max(n, 0)
}

// abort records why a run stopped part-way, with what it did up to then;
// batches already committed stay, and re-running the same file completes
// it without duplicates.
func (s *Store) abort(ctx context.Context, res *ImportResult, err error) error {
	now := s.now()
	slices.SortStableFunc(res.Problems, byRow)
	res.Status, res.Error, res.FinishedAt = "failed", err.Error(), &now
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = s.saveProgress(fctx, &res.Import, res.Problems)
	return err
}

// failEarly records a run refused before any row was read (web uploads
// already have a run to mark) and returns err.
func (s *Store) failEarly(ctx context.Context, opt ImportOptions, err error) error {
	if opt.ImportID != 0 {
		_ = s.FailImport(ctx, opt.ImportID, err.Error())
	}
	return err
}

func problemsOf(row int, err error) []RowProblem {
	var e *Error
	if errors.As(err, &e) && len(e.Fields) > 0 {
		var ps []RowProblem
		for _, f := range customerFieldOrder {
			if why, ok := e.Fields[f]; ok {
				ps = append(ps, RowProblem{Row: row, Field: csvName(f), Reason: why})
			}
		}
		return ps
	}
	return []RowProblem{{Row: row, Reason: err.Error()}}
}

var customerFieldOrder = []string{"external_id", "name", "email", "company", "metro_area", "annual_spend_cents", "level", "owner_email", "phone"}

func csvName(field string) string {
	if field == "annual_spend_cents" {
		return "annual_spend"
	}
	return field
}

// looksLikeText refuses binary files: NUL bytes or invalid UTF-8 in the start.
func looksLikeText(head []byte) error {
	if len(head) == 0 {
		return fmt.Errorf("%w: the file is empty", ErrNotCSV)
	}
	if bytes.IndexByte(head, 0) >= 0 {
		return fmt.Errorf("%w: it contains binary data (is it a spreadsheet? save it as CSV UTF-8)", ErrNotCSV)
	}
	h := head
	for i := 0; i < utf8.UTFMax && len(h) > 0 && !utf8.Valid(h); i++ {
		h = h[:len(h)-1] // the peek may cut a character in two
	}
	if !utf8.Valid(h) {
		return fmt.Errorf("%w: it is not UTF-8 text (save it as CSV UTF-8)", ErrNotCSV)
	}
	return nil
}

// mapHeader finds each known column, case-insensitively, in any order.
func mapHeader(header []string) (map[string]int, error) {
	cols := map[string]int{}
	for i, h := range header {
		k := strings.ToLower(strings.TrimSpace(h))
		k = strings.ReplaceAll(k, " ", "_")
		for _, c := range customerColumns {
			if k == c {
				if _, dup := cols[c]; dup {
					return nil, fmt.Errorf("%w: column %q appears twice in the header", ErrNotCSV, c)
				}
				cols[c] = i
			}
		}
	}
	var missing []string
	for _, need := range []string{"name", "email"} {
		if _, ok := cols[need]; !ok {
			missing = append(missing, need)
		}
	}
	if len(missing) > 0 {
		found := strings.Join(header, ", ")
		if len(found) > 120 {
			found = truncate(found, 120) + "…" // between characters: the message is stored as text
		}
		return nil, fmt.Errorf("%w: no recognisable header (needs %s; expected columns %s; found: %s)",
			ErrNotCSV, strings.Join(missing, " and "), strings.Join(customerColumns, ", "), found)
	}
	return cols, nil
}

func parseCustomerRow(rec []string, cols map[string]int, headerLen int) (CustomerInput, []RowProblem) {
	var in CustomerInput
	var ps []RowProblem
	if len(rec) < headerLen {
		return in, []RowProblem{{Reason: fmt.Sprintf("has %d fields, the header has %d", len(rec), headerLen)}}
	}
	// More fields than the header is most often a comma in a value that
	// is not quoted ($1,234.50; Acme, Inc): taken as it comes, every
	// column after it would be read from its neighbour. Empty ones at the
	// end, as some spreadsheets write, are nothing.
	for _, f := range rec[headerLen:] {
		if strings.TrimSpace(f) != "" {
			return in, []RowProblem{{Reason: fmt.Sprintf("has %d fields, the header has %d (a comma in a value that is not in quotes?)", len(rec), headerLen)}}
		}
	}
	get := func(c string) (string, bool) {
		i, ok := cols[c]
		if !ok {
			return "", false
		}
		return strings.TrimSpace(rec[i]), true
	}
	opt := func(c string) *string {
		if v, ok := get(c); ok {
			return &v
		}
		return nil
	}
	in.ExternalID, _ = get("external_id")
	in.Name, _ = get("name")
	in.Email, _ = get("email")
	in.Company, in.MetroArea, in.Phone = opt("company"), opt("metro_area"), opt("phone")
	in.OwnerEmail, _ = get("owner_email")
	if v, ok := get("annual_spend"); ok && v != "" {
		if c, err := ParseMoney(v); err != nil {
			ps = append(ps, RowProblem{Field: "annual_spend", Reason: err.Error()})
		} else {
			in.AnnualSpendCents = &c
		}
	}
	if v, ok := get("level"); ok && v != "" {
		if l, err := ParseLevel(v); err != nil {
			ps = append(ps, RowProblem{Field: "level", Reason: err.Error()})
		} else {
			in.Level = &l
		}
	}
	// Check the rest now too, so a row's every problem is named at once.
	// A clean row goes on normalized, and upsertBatch does not do it again
	// (net/mail's parse, twice a row, was an eighth of an import's CPU).
	cp := in
	v := cp.normalize()
	for _, f := range customerFieldOrder {
		if why, ok := v[f]; ok {
			ps = append(ps, RowProblem{Field: csvName(f), Reason: why})
		}
	}
	if len(ps) == 0 {
		return cp, nil
	}
	return in, ps
}

// seenKeys remembers each row's email and external id, by hash, to refuse
// a file's second row for the same customer.
type seenKeys struct {
	seed maphash.Seed
	row  map[uint64]int // hash of "e:"+email or "x:"+external id → first row
}

// maxSeenHint caps the room made up front (about 18 MB): the row count is
// guessed from the file's size, and wide rows would make it too many.
const maxSeenHint = 1 << 19

// newSeenKeys makes room for about rows rows' keys at once: grown a step at
// a time from nothing, the map is moved many times while the load, which
// waits on this parsing, copies.
func newSeenKeys(rows int64) *seenKeys {
	return &seenKeys{seed: maphash.MakeSeed(), row: make(map[uint64]int, min(max(2*rows, 0), maxSeenHint))}
}

func (s *seenKeys) hash(kind, key string) uint64 {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.WriteString(kind)
	h.WriteString(key)
	return h.Sum64()
}

// firstSeen records in's keys at row, or returns the earlier row that has
// one of them and the column it shares.
func (s *seenKeys) firstSeen(in CustomerInput, row int) (int, string) {
	var ext uint64
	x := strings.TrimSpace(in.ExternalID)
	if x != "" {
		ext = s.hash("x:", x)
		if first, ok := s.row[ext]; ok {
			return first, "external_id"
		}
	}
	email := s.hash("e:", strings.ToLower(strings.TrimSpace(in.Email)))
	if first, ok := s.row[email]; ok {
		return first, "email"
	}
	s.row[email] = row
	if x != "" {
		s.row[ext] = row
	}
	return 0, ""
}

func isBlank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// maxRowBytes bounds one row. A quote left open near the top of a file
// would otherwise have the CSV reader hold the rest of it as one field
// (a 20 MB file took 142 MB); no customer's row comes near it.
const maxRowBytes = 1 << 20

var errRowTooLong = fmt.Errorf("the row runs past %d MB, so a quote in it is most likely never closed; nothing after it was read", maxRowBytes>>20)

// rowLimit fails a read once a row has taken maxRowBytes; the import sets
// n to 0 after each row. (The CSV reader reads a few KB ahead, which is
// counted against the next row.)
type rowLimit struct {
	r io.Reader
	n int
}

func (l *rowLimit) Read(p []byte) (int, error) {
	if l.n >= maxRowBytes {
		return 0, errRowTooLong
	}
	n, err := l.r.Read(p[:min(len(p), maxRowBytes-l.n)])
	l.n += n
	return n, err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
