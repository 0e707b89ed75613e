package config

// NodeConfig is the [node] section.
type NodeConfig struct {
	// DataDir is the node data directory. Default ~/.weft.
	DataDir string `toml:"data_dir"`
	// API is the local API listen address (loopback). Default 127.0.0.1:7070.
	API string `toml:"api"`
}

func defaultNode() NodeConfig {
	return NodeConfig{API: "127.0.0.1:7070"}
}

func (c *NodeConfig) validate() error { return nil }
