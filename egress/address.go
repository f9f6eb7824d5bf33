package egress

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// refusedPrefixes are the address classes a granted name must not
// resolve to: they reach the worker itself, its networks or a cloud's
// metadata service rather than the internet a grant names.
var refusedPrefixes = []struct {
	prefix netip.Prefix
	class  string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared"}, // carrier-grade NAT
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("192.0.0.0/24"), "reserved"},  // IETF protocol assignments
	{netip.MustParsePrefix("198.18.0.0/15"), "reserved"}, // benchmarking
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("fc00::/7"), "private"}, // unique local, fd00:ec2::254 among them
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "private"}, // deprecated site-local
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
	{netip.MustParsePrefix("100::/64"), "reserved"}, // discard
	{netip.MustParsePrefix("2001:db8::/32"), "reserved"},
}

// nat64 is the well-known NAT64 prefix: the IPv4 address embedded in its
// low 32 bits is what is reached.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// RefusedAddress reports whether a granted name may not resolve to ip, and
// its class: loopback, unspecified, private, shared, link-local (the
// cloud metadata address 169.254.169.254 among them), multicast,
// broadcast or reserved. IPv4-mapped and NAT64 IPv6 addresses are judged
// by the IPv4 address they carry.
func RefusedAddress(ip netip.Addr) (class string, refused bool) {
	ip = ip.WithZone("")
	if ip.Is4In6() {
		ip = ip.Unmap()
	}
	if ip.Is6() && nat64.Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	for _, p := range refusedPrefixes {
		if p.prefix.Contains(ip) {
			return p.class, true
		}
	}
	return "", false
}

// AddressError is a dial the proxy refused because of the address a
// target resolved to.
type AddressError struct {
	// Target is the granted host:port, Address the ip:port it resolved to.
	Target, Address, Class string
}

func (e *AddressError) Error() string {
	return fmt.Sprintf("%s resolved to %s (%s): address not allowed unless the grant names that IP", e.Target, e.Address, e.Class)
}

// CheckDialAddress returns an *AddressError when address (ip:port), dialed
// for the granted target (host:port), is of a refused class and the grant
// does not name that IP literal itself.
func CheckDialAddress(target, address string) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return &AddressError{Target: target, Address: address, Class: "unparsable"}
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return &AddressError{Target: target, Address: address, Class: "not an IP address"}
	}
	class, refused := RefusedAddress(ip)
	if !refused {
		return nil
	}
	if th, _, err := net.SplitHostPort(target); err == nil {
		if lit, err := netip.ParseAddr(th); err == nil && lit.Unmap().WithZone("") == ip.Unmap().WithZone("") {
			return nil // the grant names this very address
		}
	}
	return &AddressError{Target: target, Address: address, Class: class}
}

type targetKey struct{}

func withTarget(ctx context.Context, target string) context.Context {
	return context.WithValue(ctx, targetKey{}, target)
}

// checkControl is the default dialer's Control: it runs before connect(2)
// on the address the name resolved to, so neither a hosts-file entry nor
// DNS rebinding reaches a refused address.
func checkControl(ctx context.Context, network, address string, _ syscall.RawConn) error {
	target, _ := ctx.Value(targetKey{}).(string)
	if target == "" {
		return fmt.Errorf("egress dial of %s without a grant target", address)
	}
	return CheckDialAddress(target, address)
}
