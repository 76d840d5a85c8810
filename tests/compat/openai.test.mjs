// The official `openai` SDK pointed at `cutover serve` (baseURL only): chat,
// streaming, tool calls and errors, each served by an OpenAI upstream (same
// vendor: fast path) and by an Anthropic upstream (cross vendor: translated).
// run.sh starts the sim and the gateway and sets CUTOVER_URL; the workloads
// and the sim's templates are defined there.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const BASE = process.env.CUTOVER_URL;
if (!BASE) throw new Error('CUTOVER_URL is not set: run tests/compat/run.sh');

const T = { timeout: 20_000 };
const client = (opts = {}) =>
  new OpenAI({ baseURL: `${BASE}/v1`, apiKey: 'sk-compat-client', maxRetries: 0, timeout: 15_000, ...opts });

// What the sim answers: "[MODEL/PROTOCOL] SYSTEM | LAST_USER" (+ the tool result).
const expected = (u, system, user) => `[${u.upstream}/${u.protocol}] ${system} | ${user}`;

const UPSTREAMS = [
  { label: 'same vendor (OpenAI model)', model: 'compat-gpt', workload: 'via_openai',
    upstream: 'gpt-4o', protocol: 'openai', err500: 'compat-gpt-500', err429: 'compat-gpt-429' },
  { label: 'cross vendor (Anthropic model)', model: 'compat-claude', workload: 'via_anthropic',
    upstream: 'claude-sonnet-4', protocol: 'anthropic', err500: 'compat-claude-500', err429: 'compat-claude-429' },
];

const WEATHER_TOOL = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', description: 'City name' } },
      required: ['city'],
    },
  },
};

// Resolves to the error the promise rejects with; fails when it resolves.
async function failure(promise) {
  try {
    const v = await promise;
    assert.fail(`expected an error, got a success: ${JSON.stringify(v).slice(0, 300)}`);
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    return err;
  }
}

function assertApiError(err, Cls, status) {
  assert.ok(err instanceof Cls,
    `expected OpenAI.${Cls.name} (${status}), got ${err?.constructor?.name}: status=${err?.status} ${err?.message}`);
  assert.equal(err.status, status);
  // the body is in OpenAI's shape: {"error": {"message": ...}}
  assert.equal(typeof err.error, 'object', `error body not in OpenAI's shape: ${err.message}`);
  assert.equal(typeof err.error?.message, 'string');
  assert.ok(err.error.message.length > 0, 'empty error message');
}

for (const u of UPSTREAMS) {
  describe(`openai SDK → ${u.label}`, () => {
    test('chat completion (JSON)', T, async () => {
      const { data, response } = await client().chat.completions.create({
        model: u.model,
        messages: [
          { role: 'system', content: 'Be terse.' },
          { role: 'user', content: 'Say hello' },
        ],
        max_tokens: 64,
        temperature: 0,
      }).withResponse();
      assert.equal(response.status, 200);
      assert.equal(data.object, 'chat.completion');
      assert.equal(typeof data.id, 'string');
      assert.equal(data.choices.length, 1);
      const c = data.choices[0];
      assert.equal(c.message.role, 'assistant');
      assert.equal(c.message.content, expected(u, 'Be terse.', 'Say hello'));
      assert.equal(c.finish_reason, 'stop');
      assert.ok(data.usage.prompt_tokens > 0, `usage: ${JSON.stringify(data.usage)}`);
      assert.ok(data.usage.completion_tokens > 0, `usage: ${JSON.stringify(data.usage)}`);
      assert.equal(data.usage.total_tokens, data.usage.prompt_tokens + data.usage.completion_tokens);
      assert.equal(response.headers.get('x-cutover-workload'), u.workload);
      assert.equal(response.headers.get('x-cutover-arm'), 'incumbent');
      assert.ok(response.headers.get('x-cutover-request-id'), 'no X-Cutover-Request-Id');
    });

    test('streaming: chunks, final text and usage', T, async () => {
      const stream = await client().chat.completions.create({
        model: u.model,
        messages: [
          { role: 'system', content: 'Be terse.' },
          { role: 'user', content: 'Tell me about the sea and its many colours' },
        ],
        max_tokens: 128,
        stream: true,
        stream_options: { include_usage: true },
      });
      let text = '', pieces = 0, finish = null, usage = null, chunks = 0;
      const ids = new Set();
      for await (const chunk of stream) {
        chunks++;
        assert.equal(chunk.object, 'chat.completion.chunk');
        ids.add(chunk.id);
        for (const ch of chunk.choices) {
          if (ch.delta?.content) { text += ch.delta.content; pieces++; }
          if (ch.finish_reason) finish = ch.finish_reason;
        }
        if (chunk.usage) usage = chunk.usage;
      }
      assert.equal(text, expected(u, 'Be terse.', 'Tell me about the sea and its many colours'));
      assert.ok(pieces > 1, `the text came in ${pieces} piece(s): not streamed`);
      assert.equal(finish, 'stop');
      assert.equal(ids.size, 1, 'every chunk of one completion carries the same id');
      assert.ok(usage, `no usage chunk in ${chunks} chunks although stream_options.include_usage`);
      assert.ok(usage.prompt_tokens > 0 && usage.completion_tokens > 0, `usage: ${JSON.stringify(usage)}`);
    });

    test('streaming without include_usage: every chunk has a choice', T, async () => {
      const stream = await client().chat.completions.create({
        model: u.model,
        messages: [{ role: 'user', content: 'Count to three' }],
        max_tokens: 64,
        stream: true,
      });
      let text = '';
      for await (const chunk of stream) {
        // naive clients read chunk.choices[0].delta: a usage-only chunk would break them
        assert.ok(chunk.choices.length >= 1, `chunk without choices: ${JSON.stringify(chunk)}`);
        text += chunk.choices[0].delta?.content ?? '';
      }
      assert.equal(text, `[${u.upstream}/${u.protocol}]  | Count to three`);
    });

    test('tool call: arguments parse as JSON; the tool result yields the answer', T, async () => {
      const c = client();
      const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];
      const first = await c.chat.completions.create({
        model: u.model, messages, tools: [WEATHER_TOOL], tool_choice: 'auto', max_tokens: 128,
      });
      const choice = first.choices[0];
      assert.equal(choice.finish_reason, 'tool_calls');
      assert.equal(choice.message.role, 'assistant');
      assert.equal(choice.message.tool_calls?.length, 1, JSON.stringify(choice.message));
      const call = choice.message.tool_calls[0];
      assert.equal(call.type, 'function');
      assert.equal(typeof call.id, 'string');
      assert.ok(call.id.length > 0);
      assert.equal(call.function.name, 'get_weather');
      const args = JSON.parse(call.function.arguments);
      assert.equal(typeof args, 'object');
      assert.equal(typeof args.city, 'string', `arguments: ${call.function.arguments}`);

      messages.push(choice.message);
      messages.push({ role: 'tool', tool_call_id: call.id, content: '18C and sunny' });
      const second = await c.chat.completions.create({
        model: u.model, messages, tools: [WEATHER_TOOL], max_tokens: 128,
      });
      const final = second.choices[0];
      assert.equal(final.finish_reason, 'stop');
      assert.ok(!final.message.tool_calls?.length, 'called a tool again after its result');
      assert.match(final.message.content, new RegExp(`^\\[${u.upstream}/${u.protocol}\\]`));
      assert.ok(final.message.content.includes('18C and sunny'), `answer: ${final.message.content}`);
    });

    test('tool call, streamed: argument deltas assemble into JSON', T, async () => {
      const stream = await client().chat.completions.create({
        model: u.model,
        messages: [{ role: 'user', content: 'Weather in Oslo?' }],
        tools: [WEATHER_TOOL],
        max_tokens: 128,
        stream: true,
      });
      const calls = [];
      let finish = null;
      for await (const chunk of stream) {
        for (const ch of chunk.choices) {
          for (const d of ch.delta?.tool_calls ?? []) {
            const slot = (calls[d.index] ??= { id: '', name: '', args: '' });
            if (d.id) slot.id = d.id;
            if (d.function?.name) slot.name += d.function.name;
            if (d.function?.arguments) slot.args += d.function.arguments;
          }
          if (ch.finish_reason) finish = ch.finish_reason;
        }
      }
      assert.equal(finish, 'tool_calls');
      assert.equal(calls.length, 1, JSON.stringify(calls));
      assert.ok(calls[0].id, 'tool call without id');
      assert.equal(calls[0].name, 'get_weather');
      assert.equal(typeof JSON.parse(calls[0].args).city, 'string', `arguments: ${calls[0].args}`);
    });

    test('bad request → BadRequestError 400', T, async () => {
      const err = await failure(client().chat.completions.create({ model: u.model, messages: 'not a list' }));
      assertApiError(err, OpenAI.BadRequestError, 400);
    });

    test('upstream 500 → InternalServerError 500', T, async () => {
      const err = await failure(client().chat.completions.create({
        model: u.err500, messages: [{ role: 'user', content: 'hi' }],
      }));
      assertApiError(err, OpenAI.InternalServerError, 500);
    });

    test('upstream 500 on a streaming request → InternalServerError 500', T, async () => {
      const err = await failure((async () => {
        const stream = await client().chat.completions.create({
          model: u.err500, messages: [{ role: 'user', content: 'hi' }], stream: true,
        });
        for await (const _ of stream) { /* drain */ }
      })());
      assertApiError(err, OpenAI.InternalServerError, 500);
    });

    test('upstream 429 → RateLimitError 429', T, async () => {
      const err = await failure(client().chat.completions.create({
        model: u.err429, messages: [{ role: 'user', content: 'hi' }],
      }));
      assertApiError(err, OpenAI.RateLimitError, 429);
    });

    test('upstream 429 keeps its retry-after', T, async () => {
      const err = await failure(client().chat.completions.create({
        model: u.err429, messages: [{ role: 'user', content: 'hi' }],
      }));
      assert.equal(err.status, 429);
      assert.equal(err.headers?.get('retry-after'), '3');
    });
  });
}

describe('openai SDK → workload resolution and errors', () => {
  test('unknown model alias → NotFoundError 404 naming the workloads', T, async () => {
    const err = await failure(client().chat.completions.create({
      model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }],
    }));
    assertApiError(err, OpenAI.NotFoundError, 404);
    assert.ok(err.error.message.includes('via_openai'), `message does not name the workloads: ${err.error.message}`);
  });

  test('unknown X-Cutover-Workload → NotFoundError 404', T, async () => {
    const err = await failure(client({ defaultHeaders: { 'X-Cutover-Workload': 'no_such_workload' } })
      .chat.completions.create({ model: 'compat-gpt', messages: [{ role: 'user', content: 'hi' }] }));
    assertApiError(err, OpenAI.NotFoundError, 404);
  });

  test('workload chosen by the X-Cutover-Workload header', T, async () => {
    const { data, response } = await client({ defaultHeaders: { 'X-Cutover-Workload': 'via_anthropic' } })
      .chat.completions.create({ model: 'whatever-the-app-says', messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    assert.equal(response.headers.get('x-cutover-workload'), 'via_anthropic');
    assert.equal(data.choices[0].message.content, '[claude-sonnet-4/anthropic]  | hi');
  });

  test('workload chosen by the gateway API key', T, async () => {
    const { data, response } = await client({ apiKey: process.env.COMPAT_KEY_ANTHROPIC })
      .chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    assert.equal(response.headers.get('x-cutover-workload'), 'via_anthropic');
    assert.equal(data.choices[0].message.content, '[claude-sonnet-4/anthropic]  | hi');
  });

  test('models.list', T, async () => {
    const ids = [];
    for await (const m of client().models.list()) {
      assert.equal(typeof m.id, 'string');
      assert.equal(m.object, 'model');
      ids.push(m.id);
    }
    assert.ok(ids.length > 0, 'no models listed');
    assert.ok(ids.includes('compat-gpt') || ids.includes('via_openai'),
      `neither the alias compat-gpt nor the workload via_openai is listed: ${ids.join(', ')}`);
  });
});
