module github.com/mxp-mesh/mesh/pkg/mxp

go 1.26.0

require (
	github.com/google/uuid v1.6.0
	github.com/zeebo/xxh3 v1.1.0
	golang.org/x/crypto v0.59.0
	golang.org/x/net v0.62.0
	golang.org/x/sys v0.50.0
)

require github.com/klauspost/cpuid/v2 v2.2.10 // indirect
