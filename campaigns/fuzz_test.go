package campaigns_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
)

// The fuzz targets here run their seed corpora (testdata/fuzz) as ordinary
// tests; scripts/fuzz runs each one for a minute with -fuzz.

func countCustomers(t *testing.T, s *campaigns.Store) int64 {
	var n int64
	if err := s.DB().Model(&campaigns.Customer{}).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// FuzzImportCustomers feeds arbitrary files to the CSV import. Whatever the
// bytes, it must not panic; every problem names a row; the rows it says it
// inserted are exactly the customers added; and a file refused as not CSV
// writes nothing.
func FuzzImportCustomers(f *testing.F) {
	f.Add([]byte("external_id,name,email,company,metro_area,annual_spend,level\nC-1,Ann Archer,ann@example.com,\"Acme, Inc\",Chicago,\"$1,234.56\",2\n"))
	f.Add([]byte("\ufeffname,email,annual_spend\r\nBob,bob@example.com,300\r\nBob again,BOB@example.com,400\r\n"))
	f.Add([]byte("name,email,level\n\"unclosed,x@example.com,2\n"))
	f.Add([]byte("name,email\n,missing-name@example.com\nNo Email,\n"))
	f.Add([]byte("PK\x03\x04binary"))
	s := campaignstest.Open(f, campaignstest.SQLite)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		before := countCustomers(t, s)
		res, err := s.ImportCustomers(ctx, bytes.NewReader(data), campaigns.ImportOptions{Actor: "fuzz"})
		after := countCustomers(t, s)
		if errors.Is(err, campaigns.ErrNotCSV) {
			if after != before {
				t.Fatalf("a refused file wrote %d customers", after-before)
			}
			return
		}
		if err != nil {
			t.Fatalf("import failed outright: %v", err)
		}
		if got := after - before; got != res.Inserted {
			t.Fatalf("reported %d inserted, the table grew by %d", res.Inserted, got)
		}
		if res.Inserted+res.Updated+res.Unchanged+res.Rejected > res.RowsRead {
			t.Fatalf("more outcomes (%d+%d+%d+%d) than rows read (%d)", res.Inserted, res.Updated, res.Unchanged, res.Rejected, res.RowsRead)
		}
		for _, p := range res.Problems {
			if p.Row < 2 || p.Reason == "" {
				t.Fatalf("a problem without a data row or a reason: %+v", p)
			}
		}
	})
}

// FuzzResolveToken: no string but the ones issued (give or take the spaces
// a mail client adds) opens a public link, of the kind it was issued for,
// and none makes the lookup fail with anything but not-found. Links of
// both shapes are issued: an email's link set, and a token stored one row
// each as before link sets.
func FuzzResolveToken(f *testing.F) {
	const plain = "k3x9q2m7w8p4r6t1v5y0z2a4c6e8g0"
	s := campaignstest.Open(f, campaignstest.SQLite)
	ctx := context.Background()
	ids := addCustomers(f, s, 1, "fz")
	c, err := s.CreateCampaign(ctx, eventInput("Fuzz"), "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	if _, err := s.Schedule(ctx, c.ID, campaigns.ScheduleInput{Now: true}); err != nil {
		f.Fatal(err)
	}
	if _, err := s.Start(ctx, c.ID); err != nil {
		f.Fatal(err)
	}
	cls, err := s.Claim(ctx, c.ID, campaigns.ClaimOptions{Worker: "fuzz", BatchID: "f", Limit: 1, Lease: time.Hour, CancelBy: time.Now().Add(time.Hour)})
	if err != nil || len(cls) != 1 {
		f.Fatal(err, len(cls))
	}
	issued := map[string]string{plain: campaigns.TokenUnsubscribe} // token → its kind
	for kind, tok := range cls[0].Tokens {
		issued[tok] = kind
		f.Add(tok)
		f.Add(tok[:len(tok)-1] + "a")
		f.Add(strings.ToUpper(tok))
	}
	f.Add(plain)
	f.Add(" " + plain + "\n")
	f.Add(strings.ToUpper(plain))
	f.Add(plain[:len(plain)-1])
	f.Add("'; DROP TABLE public_tokens;--")
	f.Add(strings.Repeat("a", 64))
	f.Add(strings.Repeat("a", 48))
	now := time.Now()
	if err := s.DB().Create(&campaigns.PublicToken{TokenHash: campaigns.HashSecret(plain), Kind: campaigns.TokenUnsubscribe,
		CustomerID: ids[0], CreatedAt: now, ExpiresAt: now.Add(time.Hour)}).Error; err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s2 string) {
		for _, kind := range []string{campaigns.TokenUnsubscribe, campaigns.TokenRSVP, campaigns.TokenCheckin} {
			tok, err := s.ResolveToken(ctx, kind, s2)
			if err != nil {
				if campaigns.ErrorCode(err) != campaigns.ENOTFOUND {
					t.Fatalf("%q: %v", s2, err)
				}
				continue
			}
			if issued[strings.TrimSpace(s2)] != kind || tok.CustomerID != ids[0] {
				t.Fatalf("%q opened a %s link it was not issued for", s2, kind)
			}
		}
	})
}

// FuzzTokenBySecret: an API token is found by its exact secret only.
func FuzzTokenBySecret(f *testing.F) {
	s := campaignstest.Open(f, campaignstest.SQLite)
	ctx := context.Background()
	plain, tok, err := s.CreateToken(ctx, "fuzz script", campaigns.RoleCoordinator, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(plain)
	f.Add(plain + "x")
	f.Add(plain[:len(plain)/2])
	f.Add("")
	f.Add("Bearer " + plain)
	f.Fuzz(func(t *testing.T, s2 string) {
		got, err := s.TokenBySecret(ctx, s2)
		if err != nil {
			if code := campaigns.ErrorCode(err); code != campaigns.ENOTFOUND && code != campaigns.EUNAUTHORIZED {
				t.Fatalf("%q: %v", s2, err)
			}
			return
		}
		if s2 != plain || got.ID != tok.ID {
			t.Fatalf("%q was taken for token %d", s2, got.ID)
		}
	})
}
