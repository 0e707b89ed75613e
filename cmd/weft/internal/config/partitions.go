package config

// PartitionsConfig is the [partitions] section.
type PartitionsConfig struct {
}

func defaultPartitions() PartitionsConfig {
	return PartitionsConfig{}
}

func (c *PartitionsConfig) validate() error { return nil }
