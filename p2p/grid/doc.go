// Package grid holds the formats of private grids: the grid file a founder
// hands to members (grid name and ID, the private-network key, the founder's
// peer ID) and the founder-signed, versioned member list that every member
// enforces with a connection gater.
//
// Usage:
//
//	f, err := grid.New("lab", founderID)     // founder side
//	err = f.WriteFile("lab.grid")
//	f, err = grid.ReadFile("lab.grid")        // member side
//	l := grid.MemberList{GridID: f.ID, Version: 2, Members: ids}
//	b, err := l.Sign(founderKey)
//	l2, err := grid.DecodeMemberList(b, f)   // verifies the founder's signature
//
// Concurrency: values are plain data; functions are safe for concurrent use.
package grid
