module github.com/labctl/lab

go 1.26.8

require (
	github.com/kr/pretty v0.3.1 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sync v0.24.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	gopkg.in/check.v1 v1.0.0-20190902080502-41f04d3bba15 // indirect
)

require (
	github.com/lxc/go-lxc v0.0.0-20220627182551-ad3d9f7cb822
	github.com/stretchr/testify v1.12.1
	gopkg.in/yaml.v3 v3.0.1
)

replace github.com/lxc/go-lxc => /usr/share/gocode/src/gopkg.in/lxc/go-lxc.v2
