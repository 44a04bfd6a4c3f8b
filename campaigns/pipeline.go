package campaigns

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// withPgConn runs fn on one of the pool's PostgreSQL connections as pgx,
// so that a transaction's statements can be sent together (pgx.Batch, one
// round trip for many). Under load each round trip waits for a core twice,
// on each side; a group-commit batch is on the critical path of everyone
// waiting for it. fn must not leave a transaction open; if it fails inside
// one, the transaction is rolled back, and the connection discarded if
// even that fails.
func (s *Store) withPgConn(ctx context.Context, fn func(*pgx.Conn) error) error {
	conn, err := s.sqlDB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("not a pgx connection: %T", dc)
		}
		c := sc.Conn()
		err := fn(c)
		if err != nil && c.PgConn().TxStatus() != 'I' {
			if _, rerr := c.Exec(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
				return errors.Join(err, rerr, driver.ErrBadConn)
			}
		}
		return err
	})
}

// sendBatch sends b in one round trip: it executes the first nExec
// statements, hands the rest of the results to read (when not nil), and
// reports the first error.
func sendBatch(ctx context.Context, c *pgx.Conn, b *pgx.Batch, nExec int, read func(pgx.BatchResults) error) error {
	br := c.SendBatch(ctx, b)
	err := func() error {
		for k := 0; k < nExec; k++ {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		if read != nil {
			return read(br)
		}
		return nil
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// queueLockAndHeldCredits queues the locking read of customers' levels (in
// id order, as creditMany takes them) and of the credits they hold.
func queueLockAndHeldCredits(b *pgx.Batch, customers []int64, keys []string) {
	b.Queue(`SELECT id, level FROM customers WHERE id = ANY($1) ORDER BY id FOR UPDATE`, customers)
	b.Queue(`SELECT customer_id, credit_key FROM level_ledger WHERE customer_id = ANY($1) AND credit_key = ANY($2)`, customers, keys)
}

// readLevelsAndHeldCredits reads what queueLockAndHeldCredits asked.
func readLevelsAndHeldCredits(br pgx.BatchResults) ([]customerLevel, []heldCredit, error) {
	rows, _ := br.Query()
	cur, err := pgx.CollectRows(rows, pgx.RowToStructByPos[customerLevel])
	if err != nil {
		return nil, nil, err
	}
	rows, _ = br.Query()
	done, err := pgx.CollectRows(rows, pgx.RowToStructByPos[heldCredit])
	return cur, done, err
}

// queueCredits queues a credit plan's level moves and ledger rows.
func queueCredits(b *pgx.Batch, plan creditPlan) {
	for to, ids := range plan.moved {
		b.Queue(`UPDATE customers SET level = $1, updated_at = $2 WHERE id = ANY($3)`, to, plan.at, ids)
	}
	if len(plan.entries) > 0 {
		b.Queue(ledgerInsertSQL, ledgerArrays(plan.entries)...)
	}
}
