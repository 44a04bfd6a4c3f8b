package campaigns_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
)

// crmExport is what a CRM hands over: a BOM, CRLF, headers in another case
// and order with extra columns, $ amounts, level names, quoted commas,
// non-ASCII names, and broken rows.
const crmExport = "\ufeffEMAIL,Name,Annual_Spend,Level,Metro_Area,Company,Notes,External_ID\r\n" +
	"jose@example.com,José García,\"$1,234.50\",Good customer,Chicago,\"García, Hijos & Co\",vip,CRM-1\r\n" + // row 2
	"zoe@example.com,Zoë Müller,1234,friend, evanston ,Müller GmbH,,CRM-2\r\n" + // row 3
	"not-an-email,Bad Email,12,3,Chicago,,,CRM-3\r\n" + // row 4
	"amy@example.com,Amy Amount,12.345,2,Chicago,,,CRM-4\r\n" + // row 5
	"lev@example.com,Lev Level,100,9,Chicago,,,CRM-5\r\n" + // row 6
	"noname@example.com,,100,2,Chicago,,,CRM-6\r\n" + // row 7
	"short@example.com,Too Short\r\n" + // row 8
	"JOSE@example.com,José Again,5,1,Chicago,,,CRM-7\r\n" + // row 9: the same email as row 2
	"xss@example.com,<script>alert(1)</script>,300,2,Chicago,,,CRM-8\r\n" // row 10

// problemsByRow gathers an import's problems by row, as "field: reason; ".
func problemsByRow(res *campaigns.ImportResult) map[int]string {
	byRow := map[int]string{}
	for _, p := range res.Problems {
		byRow[p.Row] += p.Field + ": " + p.Reason + "; "
	}
	return byRow
}

func TestImportCRMExport(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		res, err := s.ImportCustomers(ctx, strings.NewReader(crmExport), campaigns.ImportOptions{Actor: "t", Filename: "crm.csv"})
		require.NoError(t, err)
		require.EqualValues(t, 3, res.Inserted)
		require.EqualValues(t, 6, res.Rejected)
		byRow := problemsByRow(res)
		require.Contains(t, byRow[4], "email")
		require.Contains(t, byRow[5], "annual_spend")
		require.Contains(t, byRow[6], "level")
		require.Contains(t, byRow[7], "name")
		require.Contains(t, byRow[8], "fields")
		require.Contains(t, byRow[9], "row 2")
		require.NotContains(t, byRow, 2)

		page, err := s.ListCustomers(ctx, campaigns.CustomerQuery{Q: "garcía"})
		require.NoError(t, err)
		require.Len(t, page.Items, 1)
		j := page.Items[0]
		require.Equal(t, "José García", j.Name)
		require.EqualValues(t, 123450, j.AnnualSpendCents)
		require.Equal(t, campaigns.LevelGoodCustomer, j.Level)
		require.Equal(t, "García, Hijos & Co", j.Company)
		page, err = s.ListCustomers(ctx, campaigns.CustomerQuery{Metros: []string{"EVANSTON"}})
		require.NoError(t, err)
		require.Len(t, page.Items, 1)
		require.Equal(t, "evanston", page.Items[0].MetroArea, "the display form is kept (trimmed)")
		page, err = s.ListCustomers(ctx, campaigns.CustomerQuery{Q: "<script>"})
		require.NoError(t, err)
		require.Equal(t, "<script>alert(1)</script>", page.Items[0].Name, "stored verbatim; pages escape it")

		again, err := s.ImportCustomers(ctx, strings.NewReader(crmExport), campaigns.ImportOptions{Actor: "t"})
		require.NoError(t, err)
		require.EqualValues(t, 0, again.Inserted)
		require.EqualValues(t, 0, again.Updated)
		require.EqualValues(t, 3, again.Unchanged)

		// A later export raises a level and changes a spend; a lower level
		// never lowers one.
		update := "external_id,name,email,annual_spend,level\nCRM-1,José García,jose@example.com,2000,friend\nCRM-2,Zoë Müller,zoe@example.com,1234,2\n"
		up, err := s.ImportCustomers(ctx, strings.NewReader(update), campaigns.ImportOptions{Actor: "t"})
		require.NoError(t, err)
		require.EqualValues(t, 1, up.Updated)
		require.EqualValues(t, 1, up.Unchanged)
		led, err := s.Ledger(ctx, j.ID)
		require.NoError(t, err)
		require.Equal(t, campaigns.RuleImport, led[len(led)-1].Rule)
		require.Equal(t, campaigns.LevelFriend, led[len(led)-1].ToLevel)
		page, err = s.ListCustomers(ctx, campaigns.CustomerQuery{Q: "zoe@"})
		require.NoError(t, err)
		require.Equal(t, campaigns.LevelFriend, page.Items[0].Level)
	})
}

func TestImportRefusesWhatIsNotCSV(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		for name, body := range map[string]string{
			"binary":    "PK\x03\x04\x14\x00\x00\x00binary",
			"empty":     "",
			"no header": "foo,bar\n1,2\n",
			"latin-1":   "name,email\nJos\xe9,j@example.com\n",
		} {
			_, err := s.ImportCustomers(ctx, strings.NewReader(body), campaigns.ImportOptions{Actor: "t"})
			require.True(t, errors.Is(err, campaigns.ErrNotCSV), "%s: %v", name, err)
		}
		page, err := s.ListCustomers(ctx, campaigns.CustomerQuery{})
		require.NoError(t, err)
		require.Zero(t, page.Total, "nothing written")
		ims, err := s.RecentImports(ctx, 10)
		require.NoError(t, err)
		require.Empty(t, ims)
	})
}

func TestImportOwnersAndConflicts(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		rep, err := s.CreateUser(ctx, campaigns.NewUser{Email: "rep@example.com", Role: campaigns.RoleRep, Password: "a long password"})
		require.NoError(t, err)
		csv := "external_id,name,email,owner_email\nA,Ann,ann@example.com,REP@example.com\nB,Bo,bo@example.com,ghost@example.com\nC,Cy,ANN@Example.com,\n"
		res, err := s.ImportCustomers(ctx, strings.NewReader(csv), campaigns.ImportOptions{Actor: "t"})
		require.NoError(t, err)
		require.EqualValues(t, 2, res.Inserted)
		require.EqualValues(t, 1, res.Rejected, "row 4 reuses Ann's email under another external id")
		var warned, rejected bool
		for _, p := range res.Problems {
			if p.Row == 3 && p.Warning {
				warned = true
				require.Contains(t, p.Reason, "ghost@example.com")
			}
			if p.Row == 4 && !p.Warning {
				rejected = true
				require.Equal(t, "email", p.Field)
			}
		}
		require.True(t, warned)
		require.True(t, rejected)
		page, err := s.ListCustomers(ctx, campaigns.CustomerQuery{Q: "ann@"})
		require.NoError(t, err)
		require.Equal(t, rep.ID, *page.Items[0].OwnerID)
	})
}

func TestImportRefusesAFilesSecondRowForACustomer(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		csv := "external_id,name,email\n" +
			"A-1,Ann,ann@example.com\n" + // row 2
			"A-1,Ann Again,other@example.com\n" + // row 3: row 2's external id
			"B-1,Bo,  BO@Example.com \n" + // row 4
			"B-2,Bo Again,bo@example.com\n" + // row 5: row 4's email, as normalized
			",Cy,cy@example.com\n" + // row 6: no external id
			",Cy Again,cy@example.com\n" + // row 7: row 6's email
			"C-1,Di,di@example.com\n" // row 8
		res, err := s.ImportCustomers(ctx, strings.NewReader(csv), campaigns.ImportOptions{Actor: "t"})
		require.NoError(t, err)
		require.EqualValues(t, 4, res.Inserted)
		require.EqualValues(t, 3, res.Rejected)
		byRow := problemsByRow(res)
		require.Contains(t, byRow[3], "row 2")
		require.Contains(t, byRow[5], "row 4")
		require.Contains(t, byRow[7], "row 6")
		require.Len(t, byRow, 3)
		page, err := s.ListCustomers(ctx, campaigns.CustomerQuery{Q: "bo@"})
		require.NoError(t, err)
		require.Len(t, page.Items, 1)
		require.Equal(t, "bo@example.com", page.Items[0].Email, "stored as normalized")
		require.Equal(t, "Bo", page.Items[0].Name)
	})
}

func TestImportLargeFile(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		var b strings.Builder
		b.WriteString("external_id,name,email,metro_area,annual_spend,level\n")
		for i := 0; i < 12000; i++ {
			fmt.Fprintf(&b, "X%d,Person %d,p%d@example.com,Metro %d,$%d.00,%d\n", i, i, i, i%7, i, 1+i%7)
		}
		var progress int
		res, err := s.ImportCustomers(context.Background(), strings.NewReader(b.String()),
			campaigns.ImportOptions{Actor: "t", Size: int64(b.Len()), Progress: func(campaigns.Import) { progress++ }})
		require.NoError(t, err)
		require.EqualValues(t, 12000, res.Inserted)
		require.GreaterOrEqual(t, progress, 2, "progress is reported while it runs (at most twice a second) and at the end")
		require.Equal(t, int64(b.Len()), res.BytesRead)
	})
}

// TestImportNamesEachProblemInALongFile: blank rows are numbered but not
// counted, a duplicate is named by the row it repeats however far back, a
// malformed row is refused and the rows after it read (a quoted field
// broken across two lines once stopped the import there, silently), and a
// quote left open takes the rest of the file with it.
func TestImportNamesEachProblemInALongFile(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		var b strings.Builder
		b.WriteString("external_id,name,email,level\n")
		var want []campaigns.RowProblem
		row := 1
		for i := range 260 {
			row++
			switch i {
			case 5, 99, 100, 101: // blank rows: numbered, not counted
				b.WriteString(",,,\n")
				continue
			case 98: // row 100, named again on row 104
				b.WriteString("K98,Kim,kim@example.com,2\n")
				continue
			case 102:
				b.WriteString("K-other,Kim Again,KIM@example.com,2\n")
				want = append(want, campaigns.RowProblem{Row: row, Field: "email", Reason: "the same customer is already on row 100 of this file"})
				continue
			case 150:
				b.WriteString("X150,Bad \"Quote,q@example.com,2\n")
				want = append(want, campaigns.RowProblem{Row: row, Reason: `malformed CSV: bare " in non-quoted-field`})
				continue
			case 180: // one row over two lines, its quoted field broken
				b.WriteString("X180,\"Two\nLines\"oops,two@example.com,2\n")
				want = append(want, campaigns.RowProblem{Row: row, Reason: `malformed CSV: extraneous or missing " in quoted-field; ` +
					`the row began on line 182, and line 183 was read into it, not imported`})
				continue
			case 220:
				b.WriteString("X220,Lev El,lev@example.com,9\n")
				want = append(want, campaigns.RowProblem{Row: row, Field: "level", Reason: "level 9 is not between 1 and 7"})
				continue
			case 250: // an unclosed quote swallows the rest of the file
				b.WriteString("X250,\"Open,open@example.com,2\n")
				want = append(want, campaigns.RowProblem{Row: row, Reason: `malformed CSV: extraneous or missing " in quoted-field; ` +
					`the row began on line 253, and lines 254–262 were read into it, not imported`})
				continue
			}
			fmt.Fprintf(&b, "X%d,Person %d,p%d@example.com,%d\n", i, i, i, 1+i%7)
		}
		res, err := s.ImportCustomers(context.Background(), strings.NewReader(b.String()), campaigns.ImportOptions{Actor: "t"})
		require.NoError(t, err)
		require.Equal(t, want, res.Problems)
		require.EqualValues(t, 247, res.RowsRead, "260 rows, four blank, the last nine inside the open quote")
		require.EqualValues(t, 5, res.Rejected)
		require.EqualValues(t, 242, res.Inserted)
		require.Equal(t, int64(242), countCustomers(t, s))
	})
}

func TestImportStopsAtAReadErrorAndSaysWhere(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		var b strings.Builder
		b.WriteString("name,email\n")
		for i := range 1500 {
			fmt.Fprintf(&b, "Person %d,p%d@example.com\n", i, i)
		}
		text := b.String()
		cut := text[:strings.Index(text, "Person 1000,")+9] // cut off inside row 1,002
		_, err := s.ImportCustomers(context.Background(), &failingReader{strings.NewReader(cut)},
			campaigns.ImportOptions{Actor: "t"})
		require.ErrorContains(t, err, "connection reset by peer")
		require.ErrorContains(t, err, "read row 1002: ")
		imports, err := s.RecentImports(context.Background(), 1)
		require.NoError(t, err)
		require.Len(t, imports, 1)
		require.Equal(t, "failed", imports[0].Status)
	})
}

func TestLedgerIsTheOnlyWayLevelsMove(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		r, err := s.UpsertCustomer(ctx, campaigns.CustomerInput{Name: "Led Ger", Email: "ledger@example.com"},
			campaigns.UpsertMeta{Actor: "t", Source: "test", Rule: campaigns.RuleAPI})
		require.NoError(t, err)
		id := r.Customer.ID
		_, err = s.SetLevel(ctx, id, campaigns.LevelProspect, "", nil)
		require.Equal(t, campaigns.EINVALID, campaigns.ErrorCode(err))
		require.Contains(t, err.(*campaigns.Error).Fields, "note")
		coord := &campaigns.User{ID: 9, Email: "coord@example.com"}
		e, err := s.SetLevel(ctx, id, campaigns.LevelCustomer, "bought by phone", coord)
		require.NoError(t, err)
		require.Equal(t, campaigns.LevelRecord, e.FromLevel)
		require.Equal(t, campaigns.LevelCustomer, e.ToLevel)
		require.Equal(t, "coord@example.com", e.Actor)
		// A manual change may lower; a rule never does.
		_, err = s.SetLevel(ctx, id, campaigns.LevelProspect, "entered by mistake", coord)
		require.NoError(t, err)
		e, err = s.ChangeLevel(ctx, campaigns.LevelChange{CustomerID: id, Rule: "attended", Source: "campaign:1", Once: true,
			Target: campaigns.OneUpAtLeast(campaigns.LevelAcquaintance)})
		require.NoError(t, err)
		require.Equal(t, campaigns.LevelAcquaintance, e.ToLevel)
		e, err = s.ChangeLevel(ctx, campaigns.LevelChange{CustomerID: id, Rule: "attended", Source: "campaign:1", Once: true,
			Target: campaigns.OneUpAtLeast(campaigns.LevelAcquaintance)})
		require.NoError(t, err)
		require.Nil(t, e, "the same rule from the same source credits once")
		e, err = s.ChangeLevel(ctx, campaigns.LevelChange{CustomerID: id, Rule: "delivered", Source: "campaign:2",
			Target: campaigns.AtLeast(campaigns.LevelContact)})
		require.NoError(t, err)
		require.Nil(t, e, "AtLeast never lowers")

		led, err := s.Ledger(ctx, id)
		require.NoError(t, err)
		require.Len(t, led, 4, "created, two manual changes, one credit")
		require.Equal(t, campaigns.RuleCreated, led[0].Rule)
		require.Equal(t, campaigns.RuleManual, led[1].Rule)
		require.Equal(t, "bought by phone", led[1].Note)

		err = s.DB().Exec("UPDATE level_ledger SET to_level = 7").Error
		require.Error(t, err, "the ledger is append-only")
		_, err = s.Ledger(ctx, 999999)
		require.Equal(t, campaigns.ENOTFOUND, campaigns.ErrorCode(err))
	})
}

func TestAudienceFilter(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		csv := "name,email,metro_area,annual_spend,level\n" +
			"A,a@example.com,Chicago,100,1\nB,b@example.com,Chicago,500,2\nC,c@example.com,Evanston,5000,4\n" +
			"D,d@example.com,Milwaukee,500,6\nE,e@example.com, chicago ,900,7\nF,f@example.com,Chicago,900,3\n"
		_, err := s.ImportCustomers(ctx, strings.NewReader(csv), campaigns.ImportOptions{Actor: "t"})
		require.NoError(t, err)
		page, err := s.ListCustomers(ctx, campaigns.CustomerQuery{Q: "f@example.com"})
		require.NoError(t, err)
		require.NoError(t, s.SetConsent(ctx, page.Items[0].ID, campaigns.Bounced, "550"))
		i64 := func(v int64) *int64 { return &v }
		i := func(v int) *int { return &v }
		cases := []struct {
			name string
			f    campaigns.Filter
			want int64
		}{
			{"everyone contactable", campaigns.Filter{}, 5},
			{"default floor", campaigns.Filter{MinSpendCents: i64(campaigns.DefaultMinSpendCents)}, 4},
			{"metros any case and spaces", campaigns.Filter{Metros: []string{" CHICAGO ", "evanston"}}, 4},
			{"metros and a spend floor, every level", campaigns.Filter{Metros: []string{"Chicago", "Evanston"}, MinSpendCents: i64(30000)}, 3},
			{"a metro and a spend ceiling", campaigns.Filter{Metros: []string{"Chicago"}, MaxSpendCents: i64(100000)}, 3},
			{"spend range", campaigns.Filter{MinSpendCents: i64(50000), MaxSpendCents: i64(90000)}, 3},
			{"levels", campaigns.Filter{MinLevel: i(2), MaxLevel: i(6)}, 3},
			{"levels from", campaigns.Filter{MinLevel: i(4)}, 3},
			{"levels up to", campaigns.Filter{MaxLevel: i(2)}, 2},
			{"one level", campaigns.Filter{MinLevel: i(7), MaxLevel: i(7)}, 1},
			{"every level", campaigns.Filter{MinLevel: i(1), MaxLevel: i(7)}, 5},
			{"all together", campaigns.Filter{Metros: []string{"Chicago", "Evanston"}, MinSpendCents: i64(30000), MinLevel: i(2), MaxLevel: i(6)}, 2},
		}
		for _, tc := range cases {
			p, err := s.PreviewAudience(ctx, tc.f, 3)
			require.NoError(t, err, tc.name)
			require.Equal(t, tc.want, p.Count, tc.name)
			require.LessOrEqual(t, len(p.Sample), 3)
		}
		err = campaigns.Filter{MinSpendCents: i64(5), MaxSpendCents: i64(1), MinLevel: i(0), MaxLevel: i(8)}.Validate()
		require.Error(t, err)
		for _, f := range []string{"max_spend_cents", "min_level", "max_level"} {
			require.Contains(t, err.(*campaigns.Error).Fields, f)
		}
		// Contacted recently: out with not_contacted_within_days.
		require.NoError(t, s.DB().Exec("INSERT INTO customer_contacts (customer_id, last_contacted_at) SELECT id, ? FROM customers WHERE email = 'b@example.com'", s.DB().NowFunc()).Error)
		p, err := s.PreviewAudience(ctx, campaigns.Filter{NotContactedWithinDays: i(14)}, 10)
		require.NoError(t, err)
		require.EqualValues(t, 4, p.Count)
	})
}

// On PostgreSQL the audience count is answered from an index, not a
// sequential scan of customers, and the metros and levels bound the scan
// (migration 00013): no customer of an excluded level is read.
func TestAudienceUsesAnIndexOnPostgres(t *testing.T) {
	s := seededPostgres(t, 3)
	min, lo, hi := int64(500000), 2, 6 // $5,000: about one customer in ten, a typical invitation list
	f := campaigns.Filter{Metros: []string{"Chicago", "Evanston", "Milwaukee"}, MinSpendCents: &min, MinLevel: &lo, MaxLevel: &hi}
	var plan []string
	require.NoError(t, s.DB().Raw("EXPLAIN "+s.AudienceSQL(f)).Scan(&plan).Error)
	text := strings.Join(plan, "\n")
	t.Log(text)
	// An index-only scan where the visibility map is set; a bitmap scan of
	// the same index where a transaction of a test running beside this one
	// kept VACUUM from setting it. Either way the same index bounds.
	require.Regexp(t, `(Index Only Scan using|Bitmap Index Scan on) customers_audience_metro_idx`, text)
	require.Regexp(t, `Index Cond: \(\(metro_key = ANY .*\) AND \(level = ANY .*\) AND \(annual_spend_cents >= `, text)
	require.NotContains(t, text, "Seq Scan on customers")

	// With metros and a spend floor but no level range, the count lists
	// every level, so the (metro, level) pairs still bound the spend
	// ranges read.
	f = campaigns.Filter{Metros: []string{"Chicago", "Evanston"}, MinSpendCents: &min}
	plan = nil
	require.NoError(t, s.DB().Raw("EXPLAIN "+s.AudienceSQL(f)).Scan(&plan).Error)
	text = strings.Join(plan, "\n")
	t.Log(text)
	require.Regexp(t, `(Index Only Scan using|Bitmap Index Scan on) customers_audience_metro_idx`, text)
	require.Regexp(t, `Index Cond: \(\(metro_key = ANY .*\) AND \(level = ANY .*\) AND \(annual_spend_cents >= `, text)

	// That index answers alone only while the visibility map is kept up:
	// customers is vacuumed after 0.5% of it changes, not 20%.
	var opts []string
	require.NoError(t, s.DB().Raw("SELECT unnest(reloptions) FROM pg_class WHERE oid = 'customers'::regclass").Scan(&opts).Error)
	require.Contains(t, opts, "autovacuum_vacuum_scale_factor=0.005")
	require.Contains(t, opts, "autovacuum_vacuum_insert_scale_factor=0.005")
}

// On PostgreSQL the preview's count and a filtered list's plan no parallel
// index scan (Store.withoutParallelIndexScans: over a large share of the
// customers they ran two to four times slower than one process), and only
// those counts: a search's count, and everything else on the pool's
// sessions, keeps the server's setting.
func TestCustomerCountsPlanNoParallelIndexScanOnPostgres(t *testing.T) {
	s := campaignstest.Open(t, campaignstest.Postgres)
	ctx := context.Background()
	const show = "SHOW min_parallel_index_scan_size"
	var before string
	require.NoError(t, s.DB().Raw(show).Scan(&before).Error)
	var mu sync.Mutex
	var during []string
	capture := func(db *gorm.DB) {
		q := db.Statement.SQL.String()
		if db.DryRun || !strings.Contains(q, "count(") || !strings.Contains(q, "customer") {
			return
		}
		var v, mode string
		if err := db.Statement.ConnPool.QueryRowContext(db.Statement.Context, show).Scan(&v); err != nil {
			v = err.Error()
		}
		if err := db.Statement.ConnPool.QueryRowContext(db.Statement.Context, "SHOW plan_cache_mode").Scan(&mode); err != nil {
			mode = err.Error()
		}
		if mode == "force_custom_plan" { // the search's own transaction
			v += " in the search's transaction"
		}
		mu.Lock()
		during = append(during, v)
		mu.Unlock()
	}
	require.NoError(t, s.DB().Callback().Query().After("gorm:query").Register("test:parallel", capture))
	require.NoError(t, s.DB().Callback().Row().Before("gorm:row").Register("test:parallel", capture)) // its rows stay open after
	_, err := s.PreviewAudience(ctx, campaigns.Filter{Metros: []string{"Chicago"}}, 3)
	require.NoError(t, err)
	_, err = s.ListCustomers(ctx, campaigns.CustomerQuery{Metros: []string{"Chicago"}})
	require.NoError(t, err)
	// A search's count keeps the planner's choice (countCustomers), in the
	// search's own transaction.
	_, err = s.ListCustomers(ctx, campaigns.CustomerQuery{Q: "chicago"})
	require.NoError(t, err)
	mu.Lock()
	require.Equal(t, []string{"1TB", "1TB", before + " in the search's transaction"}, during)
	mu.Unlock()
	var after string
	require.NoError(t, s.DB().Raw(show).Scan(&after).Error)
	require.Equal(t, before, after)
}

// The search finds customers as they are now: after a rename (by the API
// and by an import) and not after they are gone.
func TestSearchFollowsChanges(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		meta := campaigns.UpsertMeta{Actor: "t", Source: "t", Rule: campaigns.RuleAPI}
		names := func(q string) []string {
			page, err := s.ListCustomers(ctx, campaigns.CustomerQuery{Q: q})
			require.NoError(t, err)
			var out []string
			for _, c := range page.Items {
				out = append(out, c.Name)
			}
			return out
		}
		_, err := s.UpsertCustomer(ctx, campaigns.CustomerInput{Name: "Quentin Quarrell", Email: "qq@example.com", Company: ptr("Quokka Ltd")}, meta)
		require.NoError(t, err)
		require.Equal(t, []string{"Quentin Quarrell"}, names("QUARR"))
		require.Equal(t, []string{"Quentin Quarrell"}, names("okka l"), "company, across a space")
		require.Equal(t, []string{"Quentin Quarrell"}, names("qq@exa"), "email")
		_, err = s.UpsertCustomer(ctx, campaigns.CustomerInput{Name: "Quentin Zephyr", Email: "qq@example.com"}, meta)
		require.NoError(t, err)
		require.Empty(t, names("quarrell"), "the old name is gone")
		require.Equal(t, []string{"Quentin Zephyr"}, names("zephyr"))
		_, err = s.ImportCustomers(ctx, strings.NewReader("name,email\nQuentin Xanadu,qq@example.com\n"), campaigns.ImportOptions{Actor: "t"})
		require.NoError(t, err)
		require.Empty(t, names("zephyr"))
		require.Equal(t, []string{"Quentin Xanadu"}, names("xanadu"))
		require.Empty(t, names(`"xan`), "a quote is only a character")
		require.NoError(t, s.DB().Exec("DELETE FROM customers WHERE email = 'qq@example.com'").Error)
		require.Empty(t, names("xanadu"))
	})
}

// The metro list counts each metro once whatever its spelling, names it as
// its first customer spelled it, and leaves out customers with none.
func TestMetrosCountEachSpellingOnce(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		csv := "name,email,metro_area\nA,a@example.com, chicago \nB,b@example.com,Chicago\nC,c@example.com,Evanston\nD,d@example.com,\n"
		_, err := s.ImportCustomers(ctx, strings.NewReader(csv), campaigns.ImportOptions{Actor: "t"})
		require.NoError(t, err)
		ms, err := s.Metros(ctx)
		require.NoError(t, err)
		require.Equal(t, []campaigns.MetroCount{{Name: "chicago", Key: "chicago", Customers: 2}, {Name: "Evanston", Key: "evanston", Customers: 1}}, ms)
	})
}

func TestImportRefusesARowWithMoreFieldsThanItsHeader(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		csv := "name,email,annual_spend,metro_area\n" +
			"Ann,ann@example.com,$1,234.50,Chicago\n" + // row 2: an unquoted thousands separator
			"Bo,bo@example.com,$5,Chicago,,\n" + // row 3: empty fields at the end are nothing
			"Cy,cy@example.com,\"$1,234.50\",Evanston\n" // row 4
		res, err := s.ImportCustomers(ctx, strings.NewReader(csv), campaigns.ImportOptions{Actor: "t"})
		require.NoError(t, err)
		require.EqualValues(t, 2, res.Inserted)
		require.Equal(t, []campaigns.RowProblem{{Row: 2, Reason: "has 5 fields, the header has 4 (a comma in a value that is not in quotes?)"}}, res.Problems)
		page, err := s.ListCustomers(ctx, campaigns.CustomerQuery{Q: "cy@"})
		require.NoError(t, err)
		require.EqualValues(t, 123450, page.Items[0].AnnualSpendCents)
	})
}

func TestImportReadsAQuotedHeaderAfterAByteOrderMark(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		// As PowerShell's Export-Csv writes it: a BOM, every field quoted.
		csv := "\ufeff\"name\",\"email\",\"company\"\r\n\"Ann\",\"ann@example.com\",\"Acme, Inc\"\r\n"
		res, err := s.ImportCustomers(context.Background(), strings.NewReader(csv), campaigns.ImportOptions{Actor: "t"})
		require.NoError(t, err)
		require.EqualValues(t, 1, res.Inserted)
		require.Empty(t, res.Problems)
		require.Equal(t, int64(len(csv)), res.BytesRead)
	})
}

func TestImportNamesAnUnknownHeaderInWholeCharacters(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		im, err := s.StartImport(ctx, "customers", "kunden.csv", 0, "t")
		require.NoError(t, err)
		// Cut at 120 bytes, the list of what was found once ended inside
		// "ä", and PostgreSQL refused to store the message.
		csv := "ID,Vorname,Nachname,E-Mail,Firma,Großraum,Jahresumsatz,Stufe,Betreuer,Telefon,Straße,Währung,Geschäftsführer\n1,A,B,a@example.com\n"
		_, err = s.ImportCustomers(ctx, strings.NewReader(csv), campaigns.ImportOptions{Actor: "t", ImportID: im.ID})
		require.ErrorIs(t, err, campaigns.ErrNotCSV)
		require.True(t, utf8.ValidString(err.Error()), err.Error())
		require.Contains(t, err.Error(), "found: ID, Vorname")
		got, err := s.GetImport(ctx, im.ID)
		require.NoError(t, err)
		require.Equal(t, "failed", got.Status)
		require.Contains(t, got.Error, "no recognisable header")
	})
}

func TestImportCountsCharactersNotBytes(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		long := strings.Repeat("Ж", 150) // 300 bytes, 150 characters: within 200
		csv := "name,email,company\n" + long + ",zh@example.com," + long + "\n" +
			strings.Repeat("Ж", 201) + ",too@example.com,Ok\n"
		res, err := s.ImportCustomers(context.Background(), strings.NewReader(csv), campaigns.ImportOptions{Actor: "t"})
		require.NoError(t, err)
		require.EqualValues(t, 1, res.Inserted)
		require.Equal(t, []campaigns.RowProblem{{Row: 3, Field: "name", Reason: "is longer than 200 characters"}}, res.Problems)
	})
}

func TestImportNamesTheColumnARepeatedRowShares(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		csv := "external_id,name,email\nA-1,Ann,ann@example.com\nA-1,Ann Again,other@example.com\nB-1,Bo,ann@example.com\n"
		res, err := s.ImportCustomers(context.Background(), strings.NewReader(csv), campaigns.ImportOptions{Actor: "t"})
		require.NoError(t, err)
		require.Equal(t, []campaigns.RowProblem{
			{Row: 3, Field: "external_id", Reason: "the same customer is already on row 2 of this file"},
			{Row: 4, Field: "email", Reason: "the same customer is already on row 2 of this file"},
		}, res.Problems)
	})
}

func TestImportHandsAnOldEmailOnWithinABatch(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		_, err := s.UpsertCustomer(ctx, campaigns.CustomerInput{ExternalID: "A", Name: "Ann", Email: "old@example.com"},
			campaigns.UpsertMeta{Actor: "t", Source: "api", Rule: campaigns.RuleAPI})
		require.NoError(t, err)
		// Ann moves to a new address, and Ben, new, has her old one: he is
		// a customer of his own, not an update of Ann's.
		csv := "external_id,name,email\nA,Ann,new@example.com\n,Ben,old@example.com\n"
		res, err := s.ImportCustomers(ctx, strings.NewReader(csv), campaigns.ImportOptions{Actor: "t"})
		require.NoError(t, err)
		require.EqualValues(t, 1, res.Updated)
		require.EqualValues(t, 1, res.Inserted)
		require.Empty(t, res.Problems)
		for email, name := range map[string]string{"new@example.com": "Ann", "old@example.com": "Ben"} {
			page, err := s.ListCustomers(ctx, campaigns.CustomerQuery{Q: email})
			require.NoError(t, err)
			require.Len(t, page.Items, 1, email)
			require.Equal(t, name, page.Items[0].Name, email)
		}
	})
}

func TestImportSaysAnUnknownOwnerLeavesTheOwnerAsItWas(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		rep, err := s.CreateUser(ctx, campaigns.NewUser{Email: "rep@example.com", Role: campaigns.RoleRep, Password: "a long password"})
		require.NoError(t, err)
		_, err = s.UpsertCustomer(ctx, campaigns.CustomerInput{Name: "Ann", Email: "ann@example.com", OwnerID: &rep.ID},
			campaigns.UpsertMeta{Actor: "t", Source: "api", Rule: campaigns.RuleAPI})
		require.NoError(t, err)
		csv := "name,email,owner_email\nAnn,ann@example.com,gone@example.com\nBo,bo@example.com,gone@example.com\n"
		res, err := s.ImportCustomers(ctx, strings.NewReader(csv), campaigns.ImportOptions{Actor: "t"})
		require.NoError(t, err)
		require.Equal(t, []campaigns.RowProblem{
			{Row: 2, Reason: "owner_email gone@example.com is not a user; the customer keeps their owner", Warning: true},
			{Row: 3, Reason: "owner_email gone@example.com is not a user; the customer is left without an owner", Warning: true},
		}, res.Problems)
	})
}

// cancellingReader cancels its context, with a reason, once n bytes are
// read: a server that stops during an import.
type cancellingReader struct {
	r      io.Reader
	n      int
	cancel context.CancelCauseFunc
	why    error
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= n; c.n <= 0 {
		c.cancel(c.why)
	}
	return n, err
}

func TestImportCutShortRecordsWhy(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		var b strings.Builder
		b.WriteString("name,email\n")
		for i := range 3000 { // past the reader's first 64 KB: it stops mid-file
			fmt.Fprintf(&b, "Person %d,p%d@example.com\n", i, i)
		}
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		im, err := s.StartImport(ctx, "customers", "big.csv", int64(b.Len()), "t")
		require.NoError(t, err)
		why := errors.New("the server stopped before the import finished; upload the file again")
		_, err = s.ImportCustomers(ctx, &cancellingReader{r: strings.NewReader(b.String()), n: b.Len() - 100, cancel: cancel, why: why},
			campaigns.ImportOptions{Actor: "t", ImportID: im.ID, Size: int64(b.Len())})
		require.ErrorIs(t, err, why)
		got, err := s.GetImport(context.Background(), im.ID)
		require.NoError(t, err)
		require.Equal(t, "failed", got.Status)
		require.Contains(t, got.Error, why.Error())
	})
}

func TestImportKeepsEveryRejectedRowBesideManyWarnings(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		// Every row names an owner who has left (a warning each), and row
		// 1,502 repeats row 2's email: that rejection must not be crowded
		// out of the report, here or on the web page.
		var b strings.Builder
		b.WriteString("name,email,owner_email\n")
		for i := range 1600 {
			email := fmt.Sprintf("p%d@example.com", i)
			if i == 1500 {
				email = "p0@example.com"
			}
			fmt.Fprintf(&b, "Person %d,%s,left@example.com\n", i, email)
		}
		im, err := s.StartImport(ctx, "customers", "owners.csv", int64(b.Len()), "t")
		require.NoError(t, err)
		res, err := s.ImportCustomers(ctx, strings.NewReader(b.String()), campaigns.ImportOptions{Actor: "t", ImportID: im.ID})
		require.NoError(t, err)
		require.EqualValues(t, 1, res.Rejected)
		require.EqualValues(t, 1599, res.Inserted)
		var rejected []int
		for i, p := range res.Problems {
			if !p.Warning {
				rejected = append(rejected, p.Row)
			}
			if i > 0 {
				require.LessOrEqual(t, res.Problems[i-1].Row, p.Row, "in row order")
			}
		}
		require.Equal(t, []int{1502}, rejected)
		require.Len(t, res.Problems, 1001, "a thousand warnings and the rejection")
		require.EqualValues(t, 599, res.MoreWarnings)

		got, err := s.GetImport(ctx, im.ID)
		require.NoError(t, err)
		stored := got.ProblemList()
		require.Len(t, stored, 500)
		require.Contains(t, stored, campaigns.RowProblem{Row: 1502, Field: "email", Reason: "the same customer is already on row 2 of this file"})
		require.Zero(t, got.UnlistedRejects(stored))
	})
}

// slowReader waits before each read, as a slow upload does.
type slowReader struct {
	r    io.Reader
	wait time.Duration
}

func (s *slowReader) Read(p []byte) (int, error) {
	time.Sleep(s.wait)
	return s.r.Read(p[:min(len(p), 64)])
}

func TestAnImportNotHeardFromShowsAsStopped(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		// A run whose process died: its heartbeat stopped ten minutes ago.
		dead, err := s.StartImport(ctx, "customers", "dead.csv", 100, "t")
		require.NoError(t, err)
		require.NoError(t, s.DB().Exec("UPDATE imports SET alive_at = ? WHERE id = ?", time.Now().Add(-10*time.Minute), dead.ID).Error)
		live, err := s.StartImport(ctx, "customers", "live.csv", 100, "t")
		require.NoError(t, err)

		got, err := s.GetImport(ctx, dead.ID)
		require.NoError(t, err)
		require.Equal(t, "failed", got.Status)
		require.Contains(t, got.Error, "stopped without finishing")
		require.Equal(t, 100, got.Percent())
		recent, err := s.RecentImports(ctx, 2)
		require.NoError(t, err)
		require.Equal(t, []string{"running", "failed"}, []string{recent[0].Status, recent[1].Status})

		// A run that is alive beats while it reads, however slowly.
		s.SetImportHeartbeat(20 * time.Millisecond)
		csv := "name,email\nAnn,ann@example.com\nBo,bo@example.com\n"
		res, err := s.ImportCustomers(ctx, &slowReader{r: strings.NewReader(csv), wait: 50 * time.Millisecond},
			campaigns.ImportOptions{Actor: "t", ImportID: live.ID})
		require.NoError(t, err)
		require.EqualValues(t, 2, res.Inserted)
		var beat time.Time
		require.NoError(t, s.DB().Raw("SELECT alive_at FROM imports WHERE id = ?", live.ID).Scan(&beat).Error)
		require.True(t, beat.After(live.StartedAt), "alive_at %v, started %v", beat, live.StartedAt)
	})
}

func TestImportStopsAtARowThatNeverEnds(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		// A quote left open on row 2 of a large file: the CSV reader would
		// take the rest of the file into that one field, in memory.
		var b strings.Builder
		b.WriteString("name,email\n\"Open,open@example.com\n")
		for i := 0; b.Len() < 1200<<10; i++ {
			fmt.Fprintf(&b, "Person %d,p%d@example.com\n", i, i)
		}
		_, err := s.ImportCustomers(context.Background(), strings.NewReader(b.String()), campaigns.ImportOptions{Actor: "t"})
		require.ErrorContains(t, err, "read row 2: the row runs past 1 MB, so a quote in it is most likely never closed")
		require.Zero(t, countCustomers(t, s))
	})
}
