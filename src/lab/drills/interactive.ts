/**
 * `rampart drill run NAME --interactive` (issue 18 §1): a person responds instead of the scripted responder. The
 * drill injects the fault and waits; the person is paged like the on-call person would be, finds the cause and fixes
 * it with the tools they would use (the rampart CLI as alice, a shell on each host of the lab); the drill scores the
 * page, their acknowledgement (the first ack of the drill's alerts, by anyone) and the customers' recovery. What to
 * do is printed here, pure: the lab's names in, the text out.
 */
export interface InteractiveSetting {
  /** The lab's namespaces by role (client, lb, web1, web2, srv). */
  readonly namespaces: Readonly<Record<string, string>>;
  readonly serverUrl: string;
  /** The on-call person's name and API token (the person plays them). */
  readonly person: string;
  readonly token: string;
  /** node and the built CLI (dist/cli/main.js). */
  readonly node: string;
  readonly main: string;
  /** Where the pages land (the receiver's records, one JSON line per page). */
  readonly pages: string;
  readonly deadlineMs: number;
}

export function interactiveInstructions(s: InteractiveSetting): string {
  const ns = (role: string) => s.namespaces[role] ?? `?${role}`;
  const cli = `sudo ip netns exec ${ns('client')} env RAMPART_SERVER=${s.serverUrl} RAMPART_TOKEN=${s.token} ${s.node} ${s.main}`;
  return [
    `You are ${s.person}, on call for the shop. Something is about to break; nobody will tell you what.`,
    `Pages arrive at ${s.pages} (one JSON line each) and in \`rampart alerts\`. Find the cause, fix it, and`,
    'acknowledge the alerts as you would on a real night; the clock runs from the fault.',
    '',
    `Your workstation (the rampart CLI as ${s.person}, from the customers' network):`,
    `  ${cli} alerts`,
    `  ${cli} incident list`,
    `  ${cli} alerts ack FINGERPRINT`,
    'A shell on each machine of the lab (its firewall, its processes):',
    ...['lb', 'web1', 'web2'].map((r) => `  sudo ip netns exec ${ns(r)} bash      # ${r}`),
    '',
    `The drill ends by itself once the shop is healthy again (every monitor UP, none of the drill's alerts firing),`,
    `or after ${Math.round(s.deadlineMs / 60_000)} min; press Enter to give up.`,
  ].join('\n');
}
