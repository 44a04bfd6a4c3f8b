package campaigns

import (
	"context"
	"log/slog"
	"time"

	"gorm.io/gorm/logger"
)

// slowQueryLogger logs only slow queries, without their parameters: query
// errors are returned to callers (who log what matters), and parameters may
// hold personal data or password hashes that never belong in a log.
type slowQueryLogger struct{ threshold time.Duration }

func (l slowQueryLogger) LogMode(logger.LogLevel) logger.Interface      { return l }
func (l slowQueryLogger) Info(context.Context, string, ...interface{})  {}
func (l slowQueryLogger) Warn(context.Context, string, ...interface{})  {}
func (l slowQueryLogger) Error(context.Context, string, ...interface{}) {}

func (l slowQueryLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	if el := time.Since(begin); el >= l.threshold {
		sql, rows := fc()
		slog.WarnContext(ctx, "slow query", "elapsed", el.String(), "rows", rows, "sql", sql)
	}
}

// gorm's Scan records each statement's SQL with its parameters written in,
// whether or not anything logs it: for a claim's 1,000-row arrays that
// formatting was 16% of a send's CPU (sendbench -cpuprofile). The
// recording, like the log, keeps placeholders.
func init() {
	logger.RecorderParamsFilter = func(_ context.Context, sql string, _ ...interface{}) (string, []interface{}) {
		return sql, nil
	}
}

// ParamsFilter makes gorm render SQL with placeholders, not values.
func (l slowQueryLogger) ParamsFilter(_ context.Context, sql string, _ ...interface{}) (string, []interface{}) {
	return sql, nil
}
