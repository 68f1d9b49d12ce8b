// Sign up and log in. The access token stays in memory; the refresh token is an HttpOnly cookie (api/auth.ts).
import { Alert, Anchor, Button, Center, Paper, PasswordInput, Stack, Text, TextInput, Title } from '@mantine/core';
import { useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import { fieldErrors, messageOf } from '../api/errors';
import { isValid, validateCredentials, type Errors } from '../lib/validate';
import { useSession } from '../session';

export function AuthPage({ mode }: { mode: 'login' | 'signup' }) {
  const session = useSession();
  const [values, setValues] = useState({ email: '', password: '', tenant_name: '', full_name: '' });
  const [errors, setErrors] = useState<Errors>({});
  const [failure, setFailure] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const set = (k: keyof typeof values) => (e: { currentTarget: { value: string } }) => setValues({ ...values, [k]: e.currentTarget.value });

  async function submit(e: FormEvent) {
    e.preventDefault();
    const found = validateCredentials(values, mode);
    setErrors(found);
    setFailure(null);
    if (!isValid(found)) return;
    setBusy(true);
    try {
      if (mode === 'login') await session.login(values.email.trim(), values.password);
      else
        await session.signup({
          email: values.email.trim(),
          password: values.password,
          tenant_name: values.tenant_name.trim(),
          ...(values.full_name.trim() && { full_name: values.full_name.trim() }),
        });
    } catch (err) {
      setErrors(fieldErrors(err));
      setFailure(messageOf(err));
    } finally {
      setBusy(false);
    }
  }

  const signup = mode === 'signup';
  return (
    <Center mih="100vh" p="md">
      <Paper withBorder p="xl" w="100%" maw={420} component="main">
        <form onSubmit={(e) => void submit(e)} noValidate>
          <Stack>
            <Title order={1} size="h3">
              {signup ? 'Create your account' : 'Log in'}
            </Title>
            {failure && (
              <Alert color="red" role="alert">
                {failure}
              </Alert>
            )}
            {signup && (
              <TextInput
                label="Business name"
                value={values.tenant_name}
                onChange={set('tenant_name')}
                error={errors.tenant_name}
                required
              />
            )}
            {signup && <TextInput label="Your name" value={values.full_name} onChange={set('full_name')} error={errors.full_name} />}
            <TextInput
              label="Email"
              type="email"
              autoComplete="email"
              value={values.email}
              onChange={set('email')}
              error={errors.email}
              required
            />
            <PasswordInput
              label="Password"
              autoComplete={signup ? 'new-password' : 'current-password'}
              value={values.password}
              onChange={set('password')}
              error={errors.password}
              description={signup ? 'At least 8 characters' : undefined}
              required
            />
            <Button type="submit" loading={busy}>
              {signup ? 'Sign up' : 'Log in'}
            </Button>
            <Text size="sm" ta="center">
              {signup ? 'Already have an account? ' : 'New here? '}
              <Anchor component={Link} to={signup ? '/login' : '/signup'}>
                {signup ? 'Log in' : 'Create an account'}
              </Anchor>
            </Text>
          </Stack>
        </form>
      </Paper>
    </Center>
  );
}
