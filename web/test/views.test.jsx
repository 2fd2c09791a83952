import { act, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import { json, useFakeFetch } from './fakeFetch.js';
import StudentView from '../src/components/StudentView.jsx';
import SignIn from '../src/components/SignIn.jsx';
import { SessionContext } from '../src/session.js';

const ME = { id: 'stu-1', name: 'Ann', email: null, role: 'student' };

function tracking(overrides = {}) {
  return {
    socket: null,
    activeSessions: [],
    isConnected: true,
    hasActiveSessions: false,
    connectionError: null,
    lastNotification: null,
    lastError: null,
    checkActiveSessions: () => {},
    dismissNotification: () => {},
    ...overrides,
  };
}


function renderStudent(track) {
  return render(
    <SessionContext.Provider value={{ token: 'tok', me: ME, signOut: () => {} }}>
      <StudentView tracking={track} />
    </SessionContext.Provider>,
  );
}

const http = useFakeFetch();

describe('StudentView', () => {
  it('uses the seed component class names when nothing is live', () => {
    const { container } = renderStudent(tracking({ isConnected: false }));
    expect(container.querySelector('.status.disconnected')).toHaveProperty('textContent', 'Disconnected');
    expect(container.querySelector('.no-sessions').textContent).toBe('No active attendance sessions');
    expect(container.querySelector('.active-sessions')).toBeNull();
  });

  it('shows a calm "Reconnecting…" while the client comes back by itself', () => {
    const { container } = renderStudent(tracking({ isConnected: false, reconnecting: true, connectionError: 'xhr poll error' }));
    const status = container.querySelector('.status.disconnected.reconnecting');
    expect(status).toHaveProperty('textContent', 'Reconnecting…');
  });

  it('shows each live session with the own status and checks in', async () => {
    const session = { sessionId: 's1', teacherId: 't', studentCount: 0, totalStudents: 2, startedAt: '2024-01-15T10:30:00.000Z', topic: 'Week 1' };
    http.mock.mockImplementation((url, init = {}) => {
      expect(init.headers.Authorization).toBe('Bearer tok');
      if (url === '/api/sessions/s1' && init.method === 'GET') {
        return json({ id: 's1', check_in_mode: 'open', records: [{ user_id: 'stu-1', name: 'Ann', status: 'absent', marked_at: null }] });
      }
      if (url === '/api/sessions/s1/check-in' && init.method === 'POST') {
        expect(JSON.parse(init.body)).toEqual({ device_id: expect.stringMatching(/^d-[0-9a-f]{24}$/) });
        return json({ user_id: 'stu-1', name: 'Ann', status: 'present', marked_at: '2024-01-15T10:31:00.000Z' });
      }
      throw new Error(`unexpected ${init.method ?? 'GET'} ${url}`);
    });
    const { container } = renderStudent(tracking({ activeSessions: [session], hasActiveSessions: true }));
    expect(container.querySelector('.status.connected').textContent).toBe('Connected');
    expect(container.querySelectorAll('.active-sessions .session-card')).toHaveLength(1);
    expect(screen.getByText('Live Attendance Sessions (1)', { exact: false })).toBeTruthy();
    expect(screen.getByText(new Date(session.startedAt).toLocaleTimeString())).toBeTruthy();

    await waitFor(() => expect(screen.getByRole('button', { name: 'Check in' }).disabled).toBe(false));
    const button = screen.getByRole('button', { name: 'Check in' });
    expect(screen.queryByLabelText('Code shown in the room')).toBeNull(); // open mode: no code to type
    expect(container.querySelector('.my-status').textContent).toContain('Not checked in');
    await act(async () => fireEvent.click(button));
    await screen.findByRole('button', { name: 'Checked in' });
    expect(container.querySelector('.my-status [data-status]').dataset.status).toBe('present');
  });

  it('shows the last notification in a live region', () => {
    renderStudent(tracking({
      lastNotification: {
        type: 'ended', courseId: 'c', sessionId: 's1', receivedAt: 1,
        data: { ended_by: 'Ada', ended_at: '2024-01-15T11:30:00.000Z', final_statistics: { present: 3, absent: 1, total: 4 } },
      },
    }));
    const region = screen.getAllByRole('status').find((el) => el.className === 'notification-region');
    expect(region.textContent).toContain('ended by Ada');
    expect(region.textContent).toContain('Attended: 3 of 4 (late included)');
  });
});

const TOKEN_ONLY = { mode: 'token', token_form: true, demo: false };
const DEMO = { mode: 'demo', token_form: true, demo: true };

describe('SignIn', () => {
  it('signs in with a pasted token on Enter (developer option), labelled as such', async () => {
    const onSignIn = vi.fn();
    const { container } = render(<SignIn signIn={TOKEN_ONLY} onSignIn={onSignIn} message={null} />);
    const input = container.querySelector('input[name="token"]');
    expect(screen.getByLabelText('Access token')).toBe(input);
    expect(screen.getByRole('heading', { name: 'Developer option: sign in with a token' })).toBeTruthy();
    fireEvent.change(input, { target: { value: 'abc.def.ghi' } });
    fireEvent.submit(input.form);
    expect(onSignIn).toHaveBeenCalledWith('abc.def.ghi');
    expect(http.mock).not.toHaveBeenCalled(); // no demo users asked for: the config says there are none
  });

  it('lists the demo users when the server has them', async () => {
    http.mock.mockImplementation(() => json({
      course: { id: 'demo-course', code: 'DEMO-101', title: 'Demo' },
      teacher: { id: 'demo-teacher', name: 'Tess Teacher', role: 'teacher', enrollment: null, token: 'T' },
      students: [{ id: 'demo-student-1', name: 'Sam', role: 'student', enrollment: 'approved', token: 'S' }],
    }));
    const onSignIn = vi.fn();
    render(<SignIn signIn={DEMO} onSignIn={onSignIn} message={null} />);
    fireEvent.click(await screen.findByRole('button', { name: 'Sign in as Sam' }));
    expect(onSignIn).toHaveBeenCalledWith('S');
    expect(screen.getByRole('button', { name: 'Sign in as Tess Teacher' })).toBeTruthy();
  });

  it('says how to configure sign-in, and asks for no token, when nothing is configured', () => {
    const help = 'Sign-in is not configured on this server. An operator sets OIDC_ISSUER ...';
    const { container } = render(
      <SignIn signIn={{ mode: 'unconfigured', token_form: false, demo: false, help }} onSignIn={() => {}} />,
    );
    expect(screen.getByRole('heading', { name: 'Sign-in is not set up yet' })).toBeTruthy();
    expect(container.textContent).toContain(help);
    expect(container.querySelector('input[name="token"]')).toBeNull();
    expect(http.mock).not.toHaveBeenCalled();
  });

  it("offers the provider's button, checks the provider, and shows its problem in plain words", async () => {
    const oidc = {
      signIn: vi.fn(),
      checkProvider: vi.fn(async () => {}),
      providerProblem: 'University login (https://idp.example) cannot be reached right now, so nobody can sign in.',
      error: null,
    };
    const config = { mode: 'oidc', token_form: false, demo: false, display_name: 'University login' };
    const { container } = render(<SignIn signIn={config} oidc={oidc} onSignIn={() => {}} />);
    expect(oidc.checkProvider).toHaveBeenCalled();
    expect(screen.getByRole('alert').textContent).toContain('cannot be reached right now');
    fireEvent.click(screen.getByRole('button', { name: 'Sign in with University login' }));
    expect(oidc.signIn).toHaveBeenCalled();
    expect(container.querySelector('input[name="token"]')).toBeNull();
  });
});

