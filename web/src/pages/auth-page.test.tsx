import { MantineProvider } from '@mantine/core';
import { fireEvent, render, screen, waitFor } from '@testing-library/react';
import { MemoryRouter } from 'react-router';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SessionProvider } from '../session';
import { AuthPage } from './auth-page';

function renderSignup() {
  return render(
    <MantineProvider>
      <MemoryRouter>
        <SessionProvider>
          <AuthPage mode="signup" />
        </SessionProvider>
      </MemoryRouter>
    </MantineProvider>,
  );
}

afterEach(() => vi.unstubAllGlobals());

describe('sign-up form', () => {
  it('shows each problem under its field and sends nothing', async () => {
    const fetch = vi.fn(async () => new Response('{}', { status: 401 }));
    vi.stubGlobal('fetch', fetch);
    renderSignup();
    await waitFor(() => expect(fetch).toHaveBeenCalledTimes(1)); // the session restore (refresh cookie)
    fireEvent.change(screen.getByLabelText(/Email/), { target: { value: 'not-an-email' } });
    fireEvent.change(screen.getByLabelText(/Password/), { target: { value: 'short' } });
    fireEvent.click(screen.getByRole('button', { name: 'Sign up' }));
    expect(await screen.findByText('Enter a valid email address')).toBeTruthy();
    expect(screen.getByText('Use at least 8 characters')).toBeTruthy();
    expect(screen.getByText('Name your business')).toBeTruthy();
    expect(screen.getByLabelText(/Email/).getAttribute('aria-invalid')).toBe('true');
    expect(fetch).toHaveBeenCalledTimes(1);
  });

  it('puts the API’s field errors and message on the form', async () => {
    const answers = [
      new Response('{}', { status: 401 }),
      Response.json(
        {
          error: {
            code: 'email_taken',
            message: 'That email is already registered',
            request_id: 'r',
            details: [{ field: 'body.email', message: 'is taken' }],
          },
        },
        { status: 409 },
      ),
    ];
    const fetch = vi.fn(async () => answers.shift()!);
    vi.stubGlobal('fetch', fetch);
    renderSignup();
    await waitFor(() => expect(fetch).toHaveBeenCalledTimes(1));
    fireEvent.change(screen.getByLabelText(/Business name/), { target: { value: 'Sunrise' } });
    fireEvent.change(screen.getByLabelText(/Email/), { target: { value: 'me@example.com' } });
    fireEvent.change(screen.getByLabelText(/Password/), { target: { value: 'correct horse' } });
    fireEvent.click(screen.getByRole('button', { name: 'Sign up' }));
    expect(await screen.findByText('That email is already registered')).toBeTruthy();
    expect(screen.getByText('is taken')).toBeTruthy();
    const [, init] = fetch.mock.calls[1] as unknown as [string, RequestInit];
    expect(JSON.parse(init.body as string)).toEqual({ email: 'me@example.com', password: 'correct horse', tenant_name: 'Sunrise' });
    expect((init.headers as Record<string, string>)['X-Auth-Mode']).toBe('cookie');
  });
});
