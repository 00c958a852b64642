package mxp

// Version is the version of this build of MXP mesh. Release builds set it with
// -ldflags "-X github.com/mxp-mesh/mesh/pkg/mxp.Version=v1.2.3"; otherwise it is "dev".
var Version = "dev"

// ProtocolVersion names the wire format this package speaks: frames compatible with the
// reference crate mxp 0.2.0.
const ProtocolVersion = "mxp/0.2.0"
