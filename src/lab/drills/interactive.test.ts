import { expect, it } from 'vitest';
import { interactiveInstructions } from './interactive.js';

it('tells the person how to reach the lab as the one on call, without naming the fault', () => {
  const text = interactiveInstructions({
    namespaces: {
      client: 'rampart-shop-ab12-client',
      lb: 'rampart-shop-ab12-lb',
      web1: 'rampart-shop-ab12-web1',
      web2: 'rampart-shop-ab12-web2',
    },
    serverUrl: 'http://10.88.0.5:8470',
    person: 'alice',
    token: 'rmp_tok',
    node: '/usr/bin/node',
    main: '/repo/dist/cli/main.js',
    pages: '/tmp/rampart-shop-ab12/pages.jsonl',
    deadlineMs: 30 * 60_000,
  });
  expect(text).toContain(
    'sudo ip netns exec rampart-shop-ab12-client env RAMPART_SERVER=http://10.88.0.5:8470 RAMPART_TOKEN=rmp_tok /usr/bin/node /repo/dist/cli/main.js alerts',
  );
  expect(text).toContain('sudo ip netns exec rampart-shop-ab12-web2 bash      # web2');
  expect(text).toContain('Pages arrive at /tmp/rampart-shop-ab12/pages.jsonl');
  expect(text).toContain('or after 30 min; press Enter to give up');
  expect(text).not.toMatch(/founding|nft|haproxy stopped/i);
});
