/**
 * The embedded example `rampart demo` runs on: the founding outage. A web shop's server after the change that
 * "blocked all incoming traffic": input policy drop, ssh still allowed, no accept for the shop on 80/443.
 */
export const FOUNDING_OUTAGE_NFT = `# /etc/nftables.conf on shop-web1 after the change of 2:00 PM
table inet filter {
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iifname "lo" accept
    tcp dport 22 ip saddr 198.51.100.0/24 accept comment "admin network"
    # the line the change removed:  tcp dport { 80, 443 } accept
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
  }
}
`;

/** The corrected ruleset: allow the shop from anywhere, admin ssh from the trusted network only. */
export const FOUNDING_FIXED_NFT = `table inet filter {
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    ct state invalid drop
    iifname "lo" accept
    tcp dport 22 ip saddr 198.51.100.0/24 accept comment "admin network"
    tcp dport { 80, 443 } accept comment "the shop"
    meta l4proto { icmp, ipv6-icmp } accept
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
  }
}
`;
