module github.com/mxp-mesh/mesh/cmd/mxp

go 1.26

require github.com/mxp-mesh/mesh/pkg/mxp v0.0.0

require (
	github.com/google/uuid v1.6.0 // indirect
	github.com/klauspost/cpuid/v2 v2.2.10 // indirect
	github.com/zeebo/xxh3 v1.1.0 // indirect
	golang.org/x/sys v0.30.0 // indirect
)

replace github.com/mxp-mesh/mesh/pkg/mxp => ../../pkg/mxp
