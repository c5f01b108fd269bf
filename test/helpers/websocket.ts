// An open WebSocket through hotproxy, with every message it received so far.
import WebSocket from 'ws';

export async function openWebSocket(port: number): Promise<{ ws: WebSocket; messages: string[] }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  const messages: string[] = [];
  ws.on('message', (m) => messages.push(m.toString()));
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  return { ws, messages };
}
