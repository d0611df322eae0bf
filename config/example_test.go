package config_test

import (
	"fmt"

	"github.com/netcluster/netcluster/config"
)

func ExampleParse() {
	c, err := config.Parse([]byte(`{
  // Comments and trailing commas are fine.
  "port": 5000,
  "channels": {
    "logs": {"propagatetochannels": "audit|archive"},
  },
}`), "example.jsonc")
	if err != nil {
		fmt.Println(err)
		return
	}
	p := c.Channels["logs"].Propagate
	fmt.Println(c.Port, c.ChannelNames())
	fmt.Println(p.Matches("audit"), p.Matches("audit2"))

	_, err = config.Parse([]byte(`{"prot": 5000}`), "typo.jsonc")
	fmt.Println(err)
	// Output:
	// 5000 [control logs]
	// true false
	// config: typo.jsonc:1:2: prot: unknown key (did you mean "port"?)
}
