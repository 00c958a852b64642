module github.com/mxp-mesh/mesh/services/inference

go 1.26
