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
