package relaytest

import (
	"fmt"
	"testing"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestRefusesUnsupportedFilters(t *testing.T) {
	_, err := compile([]*flowpb.FlowFilter{{HttpMethod: []string{"GET"}}})
	require.Equal(t, codes.InvalidArgument, status.Code(err), fmt.Sprint(err))
}
