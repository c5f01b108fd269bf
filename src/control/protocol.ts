// The control socket speaks newline-delimited JSON: one request, one response.
export type ControlCommand = 'status' | 'reload' | 'upgrade' | 'stop';

export interface ControlRequest {
  cmd: ControlCommand;
}

export type ControlResponse = ({ ok: true } | { ok: false; error: string }) & Record<string, unknown>;

export const CONTROL_SOCKET = 'control.sock';
