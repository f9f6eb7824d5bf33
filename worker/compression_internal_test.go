package worker

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
)

func TestGRPCCompressionIsOffOnlyForLoopbackByDefault(t *testing.T) {
	for addr, none := range map[string]bool{
		"127.0.0.1:7233": true, "127.9.9.9:7233": true, "[::1]:7233": true, "localhost:7233": true,
		"temporal:7233": false, "10.0.0.5:7233": false, "temporal.example.com:443": false, "[2001:db8::1]:7233": false,
	} {
		_, isNone := grpcCompression("auto", addr).(*client.GrpcCompressionNone)
		require.Equal(t, none, isNone, addr)
	}
	_, isGzip := grpcCompression("gzip", "127.0.0.1:7233").(*client.GrpcCompressionGzip)
	require.True(t, isGzip, "gzip forced on loopback")
	_, isNone := grpcCompression("none", "temporal:7233").(*client.GrpcCompressionNone)
	require.True(t, isNone, "none forced on a remote address")
	require.ErrorContains(t, Config{TemporalCompression: "zstd"}.WithDefaults().Validate(), `temporal compression "zstd"`)
}
