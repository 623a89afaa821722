# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_pdrestore_global_optspecs
    string join \n h/help V/version
end

function __fish_pdrestore_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_pdrestore_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_pdrestore_using_subcommand
    set -l cmd (__fish_pdrestore_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c pdrestore -n "__fish_pdrestore_needs_command" -s h -l help -d 'Print help'
complete -c pdrestore -n "__fish_pdrestore_needs_command" -s V -l version -d 'Print version'
complete -c pdrestore -n "__fish_pdrestore_needs_command" -f -a "demo" -d 'Run the whole job on an embedded default, in a private network namespace'
complete -c pdrestore -n "__fish_pdrestore_needs_command" -f -a "recover" -d 'Restore the delegated-prefix routes: query every server, reconcile, install'
complete -c pdrestore -n "__fish_pdrestore_needs_command" -f -a "follow" -d 'Keep the routes in step with the leases: start-up recovery, then snoop the relay\'s DHCPv6 traffic (RFC 8987)'
complete -c pdrestore -n "__fish_pdrestore_needs_command" -f -a "duid" -d 'Print the relay DUID (hex and colon-hex) and where it comes from'
complete -c pdrestore -n "__fish_pdrestore_needs_command" -f -a "check-config" -d 'Validate the configuration file and print the effective settings'
complete -c pdrestore -n "__fish_pdrestore_needs_command" -f -a "decode" -d 'Decode DHCPv6: Bulk Leasequery from a raw stream (RFC 5460 5.1 framing), or a pcap or pcapng capture of it and of DHCPv6 over UDP'
complete -c pdrestore -n "__fish_pdrestore_needs_command" -f -a "query" -d 'Ask DHCPv6 servers for their bindings with Bulk Leasequery (RFC 5460), all servers at once'
complete -c pdrestore -n "__fish_pdrestore_needs_command" -f -a "status" -d 'Show the routes pdrestore holds and what it knows of each: client, server, how and when learned, lease end'
complete -c pdrestore -n "__fish_pdrestore_needs_command" -f -a "lab-server" -d 'Serve bindings over Bulk Leasequery (RFC 5460): a lab and test server that can misbehave on purpose'
complete -c pdrestore -n "__fish_pdrestore_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c pdrestore -n "__fish_pdrestore_using_subcommand demo" -l bindings -d 'Bindings per server' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand demo" -l links -d 'Client-facing links (veth pairs)' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand demo" -l show -d 'Routes to print (0 = all)' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand demo" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pdrestore -n "__fish_pdrestore_using_subcommand recover" -s c -l config -d 'Configuration file' -r -F
complete -c pdrestore -n "__fish_pdrestore_using_subcommand recover" -l metrics-file -d 'Write the run\'s outcome and figures to this file for node_exporter\'s textfile collector (Prometheus text format, replaced atomically); overrides `metrics_file` of the configuration. A dry run writes none' -r -F
complete -c pdrestore -n "__fish_pdrestore_using_subcommand recover" -l dry-run -d 'Plan and print the changes; touch nothing (not even the state directory)'
complete -c pdrestore -n "__fish_pdrestore_using_subcommand recover" -l json -d 'Print the summary as one JSON object'
complete -c pdrestore -n "__fish_pdrestore_using_subcommand recover" -l force-prune -d 'Prune past the rail for this run: remove our unbacked routes even when every server answered empty or the removal exceeds prune_limit'
complete -c pdrestore -n "__fish_pdrestore_using_subcommand recover" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pdrestore -n "__fish_pdrestore_using_subcommand follow" -s c -l config -d 'Configuration file' -r -F
complete -c pdrestore -n "__fish_pdrestore_using_subcommand follow" -l idle -d 'With --once: how long without a packet or kernel event ends the run' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand follow" -l metrics-file -d 'Keep this file for node_exporter\'s textfile collector: the last recovery (start-up or resync) as `recover` writes it, and the service\'s counters, rewritten after each resync and each batch of route changes (at most once a second); overrides `metrics_file` of the configuration' -r -F
complete -c pdrestore -n "__fish_pdrestore_using_subcommand follow" -l once -d 'After the start-up recovery, handle what arrives until nothing has for `--idle`, then exit 0 (tests, one-off catch-up)'
complete -c pdrestore -n "__fish_pdrestore_using_subcommand follow" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pdrestore -n "__fish_pdrestore_using_subcommand duid" -s c -l config -d 'Configuration file' -r -F
complete -c pdrestore -n "__fish_pdrestore_using_subcommand duid" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pdrestore -n "__fish_pdrestore_using_subcommand check-config" -s c -l config -d 'Configuration file' -r -F
complete -c pdrestore -n "__fish_pdrestore_using_subcommand check-config" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pdrestore -n "__fish_pdrestore_using_subcommand decode" -l port -d 'In a capture, also follow TCP connections and decode UDP datagrams on this port (547 always is, and 546 for UDP); repeatable' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand decode" -l json -d 'One JSON object per line instead of text'
complete -c pdrestore -n "__fish_pdrestore_using_subcommand decode" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pdrestore -n "__fish_pdrestore_using_subcommand query" -s c -l config -d 'Take the servers, the DUIDs, timeouts, retries and limits from this configuration file (options given here win); without a query option, ask QUERY_BY_RELAY_ID for the relay DUID it names' -r -F
complete -c pdrestore -n "__fish_pdrestore_using_subcommand query" -l server -d 'A server: `ADDR`, `ADDR:PORT` or `[ADDR]:PORT` (port 547 by default); repeat for several, all queried at once' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand query" -l relay-id -d 'QUERY_BY_RELAY_ID: bindings recorded with this relay DUID (hex or colon-hex)' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand query" -l link-address -d 'QUERY_BY_LINK_ADDRESS: bindings on the link of this address' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand query" -l remote-id -d 'QUERY_BY_REMOTE_ID: bindings recorded with this Remote-ID (RFC 4649)' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand query" -l client-id -d 'QUERY_BY_CLIENTID: the bindings of this client DUID' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand query" -l address -d 'QUERY_BY_ADDRESS: the binding holding this address' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand query" -l link -d 'Link filter for --relay-id and --remote-id (the query\'s link-address)' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand query" -l requestor-duid -d 'Our DUID, sent as OPTION_CLIENTID. Default: a DUID-UUID drawn at random for this run' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand query" -l source -d 'Local address to connect from' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand query" -l timeout -d 'BULK_LQ_DATA_TIMEOUT: blocked write, silent read (RFC 5460 5.6), e.g. 30s, 2m [default: 300s]' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand query" -l connect-timeout -d 'Longest wait for each TCP connect [default: 5s]' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand query" -l first-answer-timeout -d 'Longest wait for the server\'s first message once the query is sent (at most the data timeout); past it, "no answer to the query" [default: 30s]' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand query" -l deadline -d 'Overall time allowed for each server, every try and wait included (none by default)' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand query" -l retries -d 'Retries per server after the first try (refused or failed connects, timeouts, partial results, QueryTerminated) [default: 3]' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand query" -l retry-delay -d 'Wait before the first retry; it doubles each time (with jitter), up to 60 s [default: 1s]' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand query" -l max-in-flight -d 'Queries outstanding at once on one connection (RFC 5460 6.5) [default: 1]' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand query" -l json -d 'One JSON object per binding and line, as `decode --json` prints them, plus `server`'
complete -c pdrestore -n "__fish_pdrestore_using_subcommand query" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pdrestore -n "__fish_pdrestore_using_subcommand status" -s c -l config -d 'Configuration file' -r -F
complete -c pdrestore -n "__fish_pdrestore_using_subcommand status" -l prefix -d 'Only routes inside this prefix (or equal to it)' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand status" -l client -d 'Only routes whose lease is this client\'s (DUID in hex, with or without colons)' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand status" -l interface -d 'Only routes out of this interface' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand status" -l limit -d 'Routes (and missing leases) listed in the text at most; 0 lists all' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand status" -l json -d 'Print one JSON object (every matching route) instead of text'
complete -c pdrestore -n "__fish_pdrestore_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -l listen -d 'Address and port to listen on (RFC 5460 s.5.6: port 547); repeat for several' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -l bindings -d 'Bindings as JSON Lines, the shape `pdrestore decode --json` prints (`clt_time` relative to server start, or absolute `cltt`); repeatable' -r -F
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -l kea-bindings -d 'Bindings from a Kea lease dump (tests/data/kea/bindings.json shape), times moved so that `populated-at` is the server start; repeatable' -r -F
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -l synthetic -d 'Generate N synthetic bindings (needs --relay-id)' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -l relay-id -d 'RELAY_ID (hex DUID) of the first synthetic relay; relay R adds R to its last two octets' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -l seed -d 'Seed of the synthetic generator' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -l relays -d 'Number of synthetic relays' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -l links -d 'Number of synthetic client links (2001:db8:0:J::/64)' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -l pool -d 'Delegated-prefix pool of synthetic bindings' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -l delegated-len -d 'Length of synthetic delegated prefixes' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -l ia-na-share -d 'Share of synthetic clients holding an IA_NA address instead of a prefix' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -l remote-ids -d 'Distinct synthetic remote-ids per relay (0: none)' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -l two-hop-share -d 'Share of synthetic clients behind two relays' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -l link -d 'Link prefix (repeatable); a /64 is derived around any other relay link-address' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -l server-duid -d 'The server DUID (hex); a fixed DUID-EN by default' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -l max-conns -d 'BULK_LQ_MAX_CONNS: connections open at once; more are closed at once' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -l allow -d 'Source prefix allowed to connect (repeatable); everyone when none is given' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -l allow-requestor -d 'Requestor DUID allowed to query (repeatable); others get NotAllowed' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -l allow-query-type -d 'Query type allowed (1-5, repeatable); others get NotAllowed' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -l data-timeout -d 'BULK_LQ_DATA_TIMEOUT: idle or blocked connections are closed after it' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -l max-parallel-queries -d 'Queries processed in parallel per connection' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -l one-binding-per-client-data -d 'One binding per OPTION_CLIENT_DATA (Kea\'s shape); `false` groups a client\'s bindings' -r -f -a "true\t''
false\t''"
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -l relay-data -d 'When to send OPTION_LQ_RELAY_DATA' -r -f -a "always\t'Whenever relay data is stored (what Kea does)'
when-requested\t'Only when the query\'s ORO asks for option 47 (RFC 5007 s.4.1.2.4)'"
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -l write-batch -d 'Octets buffered per query before a write' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -l fault -d 'Inject a fault, e.g. `close-after=5`, `stall-after=3,conn=0`, `done-error=2:1,xid=0x102`, `delay-each=10ms` (repeatable; see the docs of pdrestore::server::faults)' -r
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -l fault-file -d 'Faults from a file: one `--fault` SPEC per line; blank lines and `#` comments skipped' -r -F
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -l status-on-success -d 'STATUS_CODE Success in every successful REPLY (Kea does; RFC 5460 s.7.2 omits it)'
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -l serve-reclaimed -d 'Serve bindings marked reclaimed to relay-id and remote-id queries (Kea 3.3 quirk)'
complete -c pdrestore -n "__fish_pdrestore_using_subcommand lab-server" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c pdrestore -n "__fish_pdrestore_using_subcommand help; and not __fish_seen_subcommand_from demo recover follow duid check-config decode query status lab-server help" -f -a "demo" -d 'Run the whole job on an embedded default, in a private network namespace'
complete -c pdrestore -n "__fish_pdrestore_using_subcommand help; and not __fish_seen_subcommand_from demo recover follow duid check-config decode query status lab-server help" -f -a "recover" -d 'Restore the delegated-prefix routes: query every server, reconcile, install'
complete -c pdrestore -n "__fish_pdrestore_using_subcommand help; and not __fish_seen_subcommand_from demo recover follow duid check-config decode query status lab-server help" -f -a "follow" -d 'Keep the routes in step with the leases: start-up recovery, then snoop the relay\'s DHCPv6 traffic (RFC 8987)'
complete -c pdrestore -n "__fish_pdrestore_using_subcommand help; and not __fish_seen_subcommand_from demo recover follow duid check-config decode query status lab-server help" -f -a "duid" -d 'Print the relay DUID (hex and colon-hex) and where it comes from'
complete -c pdrestore -n "__fish_pdrestore_using_subcommand help; and not __fish_seen_subcommand_from demo recover follow duid check-config decode query status lab-server help" -f -a "check-config" -d 'Validate the configuration file and print the effective settings'
complete -c pdrestore -n "__fish_pdrestore_using_subcommand help; and not __fish_seen_subcommand_from demo recover follow duid check-config decode query status lab-server help" -f -a "decode" -d 'Decode DHCPv6: Bulk Leasequery from a raw stream (RFC 5460 5.1 framing), or a pcap or pcapng capture of it and of DHCPv6 over UDP'
complete -c pdrestore -n "__fish_pdrestore_using_subcommand help; and not __fish_seen_subcommand_from demo recover follow duid check-config decode query status lab-server help" -f -a "query" -d 'Ask DHCPv6 servers for their bindings with Bulk Leasequery (RFC 5460), all servers at once'
complete -c pdrestore -n "__fish_pdrestore_using_subcommand help; and not __fish_seen_subcommand_from demo recover follow duid check-config decode query status lab-server help" -f -a "status" -d 'Show the routes pdrestore holds and what it knows of each: client, server, how and when learned, lease end'
complete -c pdrestore -n "__fish_pdrestore_using_subcommand help; and not __fish_seen_subcommand_from demo recover follow duid check-config decode query status lab-server help" -f -a "lab-server" -d 'Serve bindings over Bulk Leasequery (RFC 5460): a lab and test server that can misbehave on purpose'
complete -c pdrestore -n "__fish_pdrestore_using_subcommand help; and not __fish_seen_subcommand_from demo recover follow duid check-config decode query status lab-server help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
