package campaigns_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rapport/rapport/campaigns"
	"github.com/rapport/rapport/campaigns/campaignstest"
)

func TestSmokeImport(t *testing.T) {
	campaignstest.Each(t, func(t *testing.T, s *campaigns.Store) {
		ctx := context.Background()
		csv := "\ufeffExternal_ID,Name,EMAIL,metro_area,annual_spend,level\r\nA1,Ann,ann@example.com,Chicago,\"$1,234.50\",Good customer\r\nA2,Bob,bad,Chicago,12,3\r\n"
		res, err := s.ImportCustomers(ctx, strings.NewReader(csv), campaigns.ImportOptions{Actor: "t"})
		require.NoError(t, err)
		require.EqualValues(t, 1, res.Inserted)
		require.EqualValues(t, 1, res.Rejected)
		t.Log(res.Problems)
		res, err = s.ImportCustomers(ctx, strings.NewReader(csv), campaigns.ImportOptions{Actor: "t"})
		require.NoError(t, err)
		require.EqualValues(t, 0, res.Inserted)
		require.EqualValues(t, 0, res.Updated)
		p, err := s.PreviewAudience(ctx, campaigns.Filter{Metros: []string{" chicago "}}, 5)
		require.NoError(t, err)
		require.EqualValues(t, 1, p.Count)
		pw, err := s.Demo(ctx)
		require.NoError(t, err)
		require.NotEmpty(t, pw)
	})
}
